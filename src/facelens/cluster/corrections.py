"""What a person can tell the clustering, kept as constraints that every later run honours.

A correction *confirms* the groups it touches: their faces are must-linked
(a star around one face of the group), so no later run, not even a rebuild,
pulls them apart. Saying two sets of faces are different people cannot-links
every pair of faces across them. The latest correction wins over an earlier one
that contradicts it (merging two groups a person once split removes that
split's cannot-link).

* ``merge``: several groups are one person.
* ``split``: some faces of a group are another person (a new group).
* ``move``: faces belong to another group.
* ``reject``: "not this person": the face leaves its group and can never
  rejoin it; the next run places it elsewhere.
* ``name``: the group is this person: it is enrolled in the gallery.

A named group is kept in step with the gallery by corrections (never by
automatic runs): after a correction that touches it, every usable face it
holds is enrolled, and faces that leave it have their gallery templates
removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from facelens.cluster.library_store import LibraryStore, Transaction
from facelens.cluster.store import FaceRecord
from facelens.errors import CorrectionError, PersonNotFoundError, TemplateNotFoundError
from facelens.gallery.store import GalleryStore, NewTemplate
from facelens.types import USABLE_QUALITY

__all__ = [
    "merge_groups",
    "move_faces",
    "name_group",
    "reject_faces",
    "split_group",
    "sync_gallery",
]


def confirm(store: LibraryStore, db: Transaction, face_ids: list[int]) -> None:
    """Must-link ``face_ids`` together (a star around the first)."""
    if len(face_ids) > 1:
        anchor = face_ids[0]
        store.add_links(db, "must", [(anchor, f) for f in face_ids[1:]])


def keep_apart(store: LibraryStore, db: Transaction, first: list[int], second: list[int]) -> None:
    """Cannot-link every face of ``first`` with every face of ``second``.

    Pair by pair, so the constraint stays true whichever of these faces a later
    correction moves elsewhere.
    """
    store.add_links(db, "cannot", [(a, b) for a in first for b in second])


def release(store: LibraryStore, db: Transaction, face_ids: Iterable[int]) -> None:
    """Drop every must-link of these faces (they are leaving their group)."""
    for face_id in face_ids:
        store.remove_links_of(db, "must", face_id)


def _ids(faces: list[FaceRecord]) -> list[int]:
    return [f.id for f in faces]


def merge_groups(store: LibraryStore, group_ids: list[int]) -> int:
    """Merge groups into one (the named one, else the lowest id); returns its id."""
    groups = [store.group(g) for g in dict.fromkeys(group_ids)]
    if len(groups) < 2:
        raise CorrectionError("name at least two different groups to merge")
    names = {g.name for g in groups if g.name is not None}
    if len(names) > 1:
        raise CorrectionError(
            f"groups named {', '.join(sorted(names))} are different people in the gallery; "
            "to merge them, move the faces of one into the other"
        )
    target = next((g for g in groups if g.name is not None), min(groups, key=lambda g: g.id))
    faces = [f for g in groups for f in store.faces(group_id=g.id)]
    members = [f.id for f in store.faces(group_id=target.id)] + [
        f.id for f in faces if f.group_id != target.id
    ]
    with store.write() as db:
        store.remove_links_within(db, "cannot", members)  # the latest word wins
        store.assign(db, target.id, members)
        confirm(store, db, members)
        store.drop_empty_groups(db)
        store.log(db, "merge", {"groups": [g.id for g in groups], "into": target.id})
    return target.id


def split_group(store: LibraryStore, group_id: int, face_ids: list[int]) -> int:
    """Move ``face_ids`` of a group into a new group of their own; returns the new group's id."""
    group = store.group(group_id)
    faces = store.faces(face_ids)
    outsiders = [f.id for f in faces if f.group_id != group_id]
    if outsiders:
        raise CorrectionError(
            f"faces {', '.join(map(str, outsiders))} are not in group {group_id}; "
            "split takes faces of the group being split"
        )
    taken = _ids(faces)
    rest = [f.id for f in store.faces(group_id=group_id) if f.id not in set(taken)]
    if not rest:
        raise CorrectionError("a split must leave at least one face in the group")
    with store.write() as db:
        release(store, db, taken)
        new_id = store.new_group(db)
        store.assign(db, new_id, taken)
        confirm(store, db, taken)
        confirm(store, db, rest)
        keep_apart(store, db, taken, rest)
        store.log(db, "split", {"group": group.id, "faces": taken, "new_group": new_id})
    return new_id


def move_faces(store: LibraryStore, face_ids: list[int], group_id: int) -> None:
    """Move faces into another group: they are that person, and not the person they left."""
    target = store.group(group_id)
    faces = [f for f in store.faces(face_ids) if f.group_id != target.id]
    moving = _ids(faces)
    if not moving:
        return
    with store.write() as db:
        release(store, db, moving)
        for old_group in {f.group_id for f in faces if f.group_id is not None}:
            rest = [f.id for f in store.faces(group_id=old_group) if f.id not in set(moving)]
            confirm(store, db, rest)
            keep_apart(store, db, [f.id for f in faces if f.group_id == old_group], rest)
        members = [f.id for f in store.faces(group_id=target.id)] + moving
        store.remove_links_within(db, "cannot", members)
        store.assign(db, target.id, moving)
        confirm(store, db, members)
        store.drop_empty_groups(db)
        store.log(db, "move", {"faces": moving, "to": target.id})


def reject_faces(store: LibraryStore, face_ids: list[int]) -> None:
    """ "Not this person": each face leaves its group for good and waits for the next run."""
    faces = [f for f in store.faces(face_ids) if f.group_id is not None]
    with store.write() as db:
        release(store, db, _ids(faces))
        for group_id in {f.group_id for f in faces}:
            leaving = [f.id for f in faces if f.group_id == group_id]
            rest = [f.id for f in store.faces(group_id=group_id) if f.id not in set(leaving)]
            confirm(store, db, rest)
            # Each leaving face is not this person (nor, necessarily, the same as the others).
            keep_apart(store, db, leaving, rest)
            store.log(db, "reject", {"faces": leaving, "group": group_id})
        store.assign(db, None, _ids(faces))
        store.drop_empty_groups(db)


def name_group(store: LibraryStore, group_id: int, name: str) -> None:
    """Name a group (confirming its faces); :func:`sync_gallery` then enrolls it."""
    name = name.strip()
    if not name:
        raise CorrectionError("a name cannot be empty")
    group = store.group(group_id)
    holder = store.group_named(name)
    if holder is not None and holder.id != group.id:
        raise CorrectionError(
            f"group {holder.id} is already named {name!r}; merge the two groups instead "
            f"(`facelens cluster merge {holder.id} {group.id}`)"
        )
    with store.write() as db:
        confirm(store, db, [f.id for f in store.faces(group_id=group.id)])
        store.set_name(db, group.id, name)
        store.log(db, "name", {"group": group.id, "name": name, "was": group.name})


def sync_gallery(
    store: LibraryStore,
    gallery: GalleryStore,
    group_ids: Iterable[int],
    renamed_from: str | None = None,
    *,
    best: int | None = None,
) -> dict[str, int]:
    """Bring the gallery in step with named groups: drop leavers, enroll their usable faces.

    Returns the number of templates ``enrolled`` and ``removed``. ``renamed_from``
    is the previous name of a group that was just renamed (its gallery person
    is renamed too). With ``best``, a group keeps at most that many faces
    enrolled (its best by quality); its other faces stay linked to the person
    as appearances, without a gallery template.
    """
    names = {g.id: g.name for g in store.groups()}
    wanted = [g for g in dict.fromkeys(group_ids) if names.get(g) is not None]
    if renamed_from is not None:
        for group_id in wanted:
            new_name = str(names[group_id])
            if new_name != renamed_from:
                with contextlib.suppress(PersonNotFoundError):
                    gallery.rename_person(renamed_from, new_name)
                with store.write() as db:
                    store.rename_enrolled(db, renamed_from, new_name)
    # Faces enrolled under a name whose group no longer carries it.
    leavers = [
        f
        for f in store.faces()
        if f.template_id is not None
        and (f.group_id is None or names.get(f.group_id) != f.enrolled_as)
    ]
    for face in leavers:
        with contextlib.suppress(TemplateNotFoundError):
            gallery.remove_template(int(face.template_id or 0))
    if leavers:
        with store.write() as db:
            store.set_enrolled(db, _ids(leavers), [None] * len(leavers), None)
    enrolled = 0
    for group_id in wanted:
        name = str(names[group_id])
        members = store.faces(group_id=group_id)  # best quality first
        pending = [f for f in members if f.template_id is None and f.quality >= USABLE_QUALITY]
        if best is not None:
            pending = pending[: max(0, best - sum(f.template_id is not None for f in members))]
        if not pending:
            continue
        vectors = store.vectors(_ids(pending))
        templates = [
            NewTemplate(vector, gallery.model_id, f.source, f.quality, store.crop(f.id))
            for f, vector in zip(pending, vectors, strict=True)
        ]
        ids = gallery.add_templates(name, templates, create=True)
        with store.write() as db:
            store.set_enrolled(db, _ids(pending), list(ids), name)
        enrolled += len(ids)
    return {"enrolled": enrolled, "removed": len(leavers)}
