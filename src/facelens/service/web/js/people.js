// People, the home page (#/people): the known people, then the groups of unknown faces of the
// library (largest first, a page at a time) to name, merge, hide or correct, and the scan of
// a folder or an upload into the library. #/people/NAME is one person's page (person.js).

import { api, apiPage, ApiError, cropUrl } from "./api.js";
import { $, cancelOnEscape, dropZone, el, onEscape, plural, say, undoneMessage } from "./dom.js";
import { setupPerson } from "./person.js";
import { failureItems, scanFailures, scanSentences } from "./results.js";

const PAGE = 24; // groups fetched per page: 2,000 groups open as fast as 24
const POLL_MS = 1000;
const FINISHED = ["done", "failed", "cancelled"];

/** Every gallery person's name in the shared <datalist id="people-names"> (and enroll's). */
export async function loadNames() {
  const people = await api("GET", "/api/people");
  const options = () => people.map((p) => el("option", { value: p.name }));
  $("#people-names").replaceChildren(...options());
  $("#enroll-names").replaceChildren(...options());
  return people;
}

/** A name as it is compared: NFC, spaces trimmed and collapsed (the server's rule), and case
 * ignored, so "colin  powell " is Colin Powell. */
function nameKey(name) {
  return name.normalize("NFC").trim().replace(/\s+/g, " ").toLocaleLowerCase();
}

export function setupPeople(session) {
  let people = [];
  let groups = [];
  let total = 0;
  const selected = new Set();
  let scanTimer = null; // null: no scan followed; else the poll's timer (0 before the first)
  const person = setupPerson(session, { onChange: () => loadPeople() });

  // --- known people ----------------------------------------------------------------------

  function avatar(p) {
    if (session.can("enroll") && p.photos && p.photos.length) {
      return el("img", { class: "avatar", src: cropUrl(p.name, p.photos[0].id), alt: "" });
    }
    const initials = p.name.split(/\s+/).map((w) => w[0] || "").join("").slice(0, 2).toUpperCase();
    return el("span", { class: "avatar initials", "aria-hidden": "true", text: initials });
  }

  /** The person already in the gallery that `name` names, the same apart from case and
   * spaces ("colin powell" is Colin Powell), or null: a name is never made twice. */
  function knownName(name) {
    const exact = people.find((p) => p.name === name);
    if (exact) return exact.name;
    const key = nameKey(name);
    const same = key && people.find((p) => nameKey(p.name) === key);
    return same ? same.name : null;
  }

  function renderPeople() {
    const typed = $("#people-filter").value.trim();
    const filter = typed.toLowerCase();
    const shown = people.filter((p) => p.name.toLowerCase().includes(filter));
    $("#people-list").replaceChildren(
      ...shown
        .map((p) =>
          el(
            "li",
            {},
            el(
              "button",
              { type: "button", class: "person-card", "data-name": p.name, onclick: () => open(p.name) },
              avatar(p),
              el("span", { class: "person-name", text: p.name }),
              el("span", { class: "muted", text: plural(p.templates, "enrolled face") }), // the templates: from photos or a named group's best faces
            ),
          ),
        ),
    );
    // filtered, the count says how many of them show: "(0 of 11)", never a bare "(11)"
    $("#people-count").textContent = filter && people.length ? `(${shown.length} of ${people.length})` : `(${people.length})`;
    $("#people-empty").hidden = people.length > 0;
    $("#people-none").textContent = filter && people.length && !shown.length ? `Nobody called "${typed}".` : "";
  }

  function open(name) {
    if (name.includes("/")) {
      // Only an older version could store it: a URL path segment cannot hold "/" (issue 13).
      say("flash", `"${name}" holds a "/", which names no longer may: rename or erase it with ` +
        "facelens people rename / facelens people remove on the server.");
      return;
    }
    location.hash = `#/people/${encodeURIComponent(name)}`;
  }

  async function loadPeople() {
    try {
      people = await loadNames();
    } catch (error) {
      say("flash", error.message);
      return;
    }
    renderPeople();
    if (session.can("enroll")) {
      // one face each, fetched after the list shows (the list never waits for them)
      const detailed = await Promise.all(
        people.slice(0, 60).map((p) => api("GET", `/api/people/${encodeURIComponent(p.name)}`).catch(() => p)),
      );
      const byName = new Map(detailed.map((p) => [p.name, p]));
      people = people.map((p) => byName.get(p.name) || p);
      renderPeople();
    }
  }

  // --- groups of unknown faces -----------------------------------------------------------

  const openers = new WeakMap(); // a group's card -> opens its faces (again, after a change)
  let lastTicked = null; // the group ticked last: its card offers "Merge N selected groups"

  function groupsPath(offset, limit) {
    const hidden = $("#groups-hidden").checked ? "&hidden=true" : "";
    return `/api/library/groups?offset=${offset}&limit=${limit}${hidden}`;
  }

  const cards = () => [...$("#groups-list").children];
  const cardOf = (id) => cards().find((card) => Number(card.dataset.group) === id) || null;

  /** The first `count` groups again (after a change), or the first page. The faces of a
   * group that were open are opened again (fetched anew). */
  async function loadGroups(count = PAGE) {
    say("groups-error", "");
    const open = cards()
      .filter((card) => !card.querySelector(".group-faces").hidden)
      .map((card) => Number(card.dataset.group));
    try {
      const page = await apiPage(groupsPath(0, Math.min(500, Math.max(PAGE, count))));
      groups = page.items;
      total = page.total;
    } catch (error) {
      say("groups-error", error.message);
      return;
    }
    for (const id of [...selected]) if (!groups.some((g) => g.id === id)) selected.delete(id);
    if (!selected.has(lastTicked)) lastTicked = [...selected].pop() ?? null;
    renderGroups();
    await Promise.all(open.map((id) => cardOf(id)).filter(Boolean).map((card) => openers.get(card)()));
  }

  async function more() {
    let added;
    try {
      const page = await apiPage(groupsPath(groups.length, PAGE));
      const known = new Set(groups.map((g) => g.id));
      added = page.items.filter((g) => !known.has(g.id));
      groups = groups.concat(added);
      total = page.total;
    } catch (error) {
      say("groups-error", error.message);
      return;
    }
    const fresh = added.map(groupCard); // the groups shown stay as they are (open panels too)
    $("#groups-list").append(...fresh);
    renderGroups(false);
    const next = fresh.length && fresh[0].querySelector(".group-select, .group-open");
    if (next) next.focus(); // keyboard users carry on where the new groups start
  }

  function renderGroups(all = true) {
    const hidden = $("#groups-hidden").checked;
    $("#groups-count").textContent = `(${plural(total, hidden ? "hidden group" : "group")})`;
    if (all) $("#groups-list").replaceChildren(...groups.map(groupCard));
    $("#groups-empty").hidden = groups.length > 0;
    $("#groups-more").hidden = groups.length >= total;
    $("#groups-more").textContent = `Show more groups (${(total - groups.length).toLocaleString("en")} more)`;
    updateTools();
  }

  function updateTools() {
    const canChange = session.can("enroll");
    const n = selected.size;
    $("#groups-tools").hidden = false;
    $("#groups-merge").hidden = !canChange;
    $("#library-undo").hidden = !canChange;
    $("#groups-merge").disabled = n < 2;
    $("#groups-merge").textContent = n >= 2 ? `Merge ${n} selected groups` : "Merge selected";
    // the card ticked last offers the merge too, right after its tick (by eye and by Tab)
    for (const card of cards()) {
      const row = card.querySelector(".group-merge-row");
      if (!row) continue;
      const here = Number(card.dataset.group) === lastTicked && selected.has(lastTicked);
      row.hidden = !here;
      row.querySelector(".group-merge-here").hidden = n < 2;
      row.querySelector(".group-merge-here").textContent = `Merge ${n} selected groups`;
      row.querySelector(".group-merge-hint").textContent = n < 2
        ? "Tick another group of the same person to merge them."
        : `${plural(n, "group")} ticked.`;
    }
  }

  /** How a group is named where one is chosen: its name, else its number and size. */
  function groupLabel(g) {
    return g.name ? `${g.name} (${plural(g.faces, "face")})` : `Group ${g.id}: ${plural(g.faces, "face")}`;
  }

  function groupCard(group) {
    const canChange = session.can("enroll");
    const title = `Group ${group.id}: ${plural(group.faces, "face")}`;
    const input = el("input", {
      type: "text",
      class: "group-name-input",
      list: "people-names",
      maxlength: 200,
      placeholder: "Who is this?",
      "aria-label": `Name of the person in group ${group.id}`,
      required: true,
    });
    // Like a face met in Identify: "This is NAME" joins someone known (the same name in
    // another case is them too), "New person: NAME" makes one.
    const submit = el("button", { type: "submit", text: "Name" });
    input.addEventListener("input", () => {
      const name = input.value.trim();
      const known = name && knownName(name);
      submit.textContent = !name ? "Name" : known ? `This is ${known}` : `New person: ${name}`;
    });
    cancelOnEscape(input); // Escape empties the name typed
    const problem = el("p", { class: "error group-error", role: "alert", hidden: true });
    const faces = el("div", { class: "group-faces", hidden: true });
    const toggle = el("button", {
      type: "button",
      class: "secondary small group-open",
      "aria-expanded": "false",
      text: "Check the faces",
      onclick: () => toggleFaces(group, faces, toggle),
    });
    // Escape in the open faces (or on its button) closes them; the focus goes back to the button
    onEscape(() => !faces.hidden && (toggleFaces(group, faces, toggle), toggle), faces, toggle);
    const card = el(
      "li",
      { class: "group", "data-group": group.id },
      el(
        "div",
        { class: "group-head" },
        canChange
          ? el(
              "label",
              { class: "check" },
              el("input", {
                type: "checkbox",
                class: "group-select",
                checked: selected.has(group.id),
                "aria-label": `Select group ${group.id} to merge`,
                onchange: (event) => {
                  if (event.target.checked) {
                    selected.add(group.id);
                    lastTicked = group.id;
                  } else {
                    selected.delete(group.id);
                    if (lastTicked === group.id) lastTicked = [...selected].pop() ?? null;
                  }
                  updateTools();
                },
              }),
              el("span", { text: title }),
            )
          : el("span", { text: title }),
      ),
      canChange
        ? el(
            "div",
            { class: "row group-merge-row", hidden: true },
            el("button", { type: "button", class: "small group-merge-here", hidden: true, onclick: merge }),
            el("span", { class: "muted group-merge-hint" }),
          )
        : null,
      el(
        "div",
        { class: "samples" },
        ...group.samples.map((s) => el("img", { class: "crop", src: s.crop_url, alt: `a face of group ${group.id}`, loading: "lazy" })),
      ),
      looksLike(group, canChange, input, problem),
      canChange
        ? el(
            "form",
            { class: "row group-name", onsubmit: (event) => nameGroup(event, group, input, problem) },
            input,
            submit,
          )
        : null,
      problem,
      el(
        "div",
        { class: "row" },
        toggle,
        canChange
          ? el("button", {
              type: "button",
              class: "secondary small group-hide",
              text: group.hidden ? "Show again" : "Hide (strangers)",
              onclick: () => hide(group),
            })
          : null,
      ),
      faces,
    );
    openers.set(card, () => (faces.hidden ? toggleFaces(group, faces, toggle) : Promise.resolve()));
    return card;
  }

  async function toggleFaces(group, box, button) {
    const opening = box.hidden;
    box.hidden = !opening;
    button.setAttribute("aria-expanded", String(opening));
    button.textContent = opening ? "Close the faces" : "Check the faces";
    if (!opening) return;
    box.replaceChildren(el("p", { class: "muted", text: "loading…" }));
    let detail;
    try {
      detail = await api("GET", `/api/library/groups/${group.id}`);
    } catch (error) {
      box.replaceChildren(el("p", { class: "error", text: error.message }));
      return;
    }
    const canChange = session.can("enroll");
    const others = groups.filter((g) => g.id !== group.id);
    const chosen = new Set(); // faces ticked for "move to a person" or "new group"
    const tools = canChange ? faceTools(group, detail, chosen) : null;
    box.replaceChildren(
      el("p", { class: "hint", text: canChange ? "A face that is not this person: move it to its group or to a person, or say it is not them. Tick faces to move several, or to make them a group of their own." : "" }),
      el(
        "ul",
        { class: "face-list" },
        ...detail.faces.map((face, index) =>
          el(
            "li",
            { "data-face": face.face },
            canChange
              ? el("input", {
                  type: "checkbox",
                  class: "face-select",
                  "aria-label": `Select face ${face.face}`,
                  onchange: (event) => {
                    if (event.target.checked) chosen.add(face.face);
                    else chosen.delete(face.face);
                    tools.update();
                  },
                })
              : null,
            el("img", { class: "crop", src: face.crop_url, alt: `face ${face.face}`, loading: "lazy" }),
            el(
              "div",
              { class: "face-info" },
              el("div", { class: "file", title: face.source, text: face.source.split("/").pop() }),
              el("div", { class: "muted", text: face.time === null ? "photo" : `video at ${face.time.toFixed(1)} s` }),
              canChange
                ? el(
                    "div",
                    { class: "row" },
                    el("button", {
                      type: "button",
                      class: "small danger face-reject",
                      text: "Not this person",
                      onclick: () => correct("/api/library/faces/reject", { faces: [face.face] }, "The face left the group.", {
                        anchor: group.id,
                        spot: (card) => faceRow(card, index),
                        focus: (card) => faceAt(card, group.id, index),
                      }),
                    }),
                  )
                : null,
              canChange && others.length ? moveToGroup(group, face, index, others) : null,
            ),
          ),
        ),
      ),
      tools ? tools.node : null,
    );
  }

  /** The face at `index` in a card's open faces (the last if there are fewer), or null. */
  function faceRow(card, index) {
    const rows = card.querySelectorAll(".face-list > li");
    return rows.length ? rows[Math.min(index, rows.length - 1)] : null;
  }

  /** After a face left a group: the same place in the group's faces, opened again (the face
   * now there, or the last), else the card's own first control. */
  function faceAt(card, groupId, index) {
    if (!card) return null;
    const row = Number(card.dataset.group) === groupId && faceRow(card, index);
    return (row && row.querySelector(".face-select, .face-reject")) || card.querySelector(".group-select, .group-open");
  }

  /** "Move to group…": choosing a group only shows it (one of its faces beside the choice);
   * the face moves when Move is pressed. The arrow keys on the choice move nothing. */
  function moveToGroup(group, face, index, others) {
    const choice = el(
      "select",
      { class: "face-move", "aria-label": `Group to move face ${face.face} to` },
      el("option", { value: "", text: "Move to group…" }),
      ...others.map((g) => el("option", { value: g.id, text: groupLabel(g) })),
    );
    const thumb = el("img", { class: "crop move-thumb", alt: "", hidden: true });
    const go = el("button", {
      type: "button",
      class: "small face-move-go",
      text: "Move",
      disabled: true,
      onclick: () => {
        const target = others.find((g) => g.id === Number(choice.value));
        if (!target) return;
        correct("/api/library/faces/move", { faces: [face.face], group: target.id }, target.name ? `The face moved to ${target.name}.` : `The face moved to group ${target.id}.`, {
          anchor: group.id,
          spot: (card) => faceRow(card, index),
          focus: (card) => faceAt(card, group.id, index),
        });
      },
    });
    choice.addEventListener("change", () => {
      const target = others.find((g) => g.id === Number(choice.value));
      const sample = target && target.samples[0];
      thumb.hidden = !sample;
      if (sample) {
        thumb.src = sample.crop_url;
        thumb.alt = `a face of group ${target.id}`;
      }
      go.disabled = !target;
      go.textContent = target ? `Move to group ${target.id}` : "Move";
    });
    return el("div", { class: "row face-move-row" }, choice, thumb, go);
  }

  /** What can be done with the ticked faces of a group: they are a person (known or new),
   * or a group of their own (a split: at least one face must stay). */
  function faceTools(group, detail, chosen) {
    const count = el("span", { class: "muted face-count", role: "status", text: "No face selected." });
    const input = el("input", {
      type: "text",
      class: "face-person-input",
      list: "people-names",
      maxlength: 200,
      placeholder: "Who are they?",
      "aria-label": `Person the selected faces of group ${group.id} are`,
      required: true,
    });
    const move = el("button", { type: "submit", class: "small face-to-person", text: "Move to person", disabled: true });
    input.addEventListener("input", () => {
      const name = input.value.trim();
      const known = name && knownName(name);
      move.textContent = !name ? "Move to person" : known ? `Move to ${known}` : `Move to new person: ${name}`;
    });
    // the tools stay where they were on the screen; the focus goes to the face just above them
    const backHere = {
      anchor: group.id,
      spot: (card) => card.querySelector(".face-tools"),
      focus: (card) => card && faceAt(card, group.id, Infinity),
    };
    const split = el("button", {
      type: "button",
      class: "small secondary face-split",
      text: "New group from selected",
      disabled: true,
      onclick: () => {
        const faces = [...chosen];
        correct(`/api/library/groups/${group.id}/split`, { faces }, (a) => `${plural(faces.length, "face")} made group ${a.new_group}. Undo joins them again.`, backHere);
      },
    });
    const form = el(
      "form",
      {
        class: "row face-person",
        onsubmit: (event) => {
          event.preventDefault();
          const typed = input.value.trim();
          if (!typed || !chosen.size) {
            count.textContent = !chosen.size ? "Tick the faces to move first." : "Type who they are first (spaces alone are no name).";
            input.focus();
            return;
          }
          const name = knownName(typed) || typed;
          const faces = [...chosen];
          correct("/api/library/faces/name", { faces, name }, `${plural(faces.length, "face")} moved to ${name}.`, backHere);
        },
      },
      input,
      move,
    );
    const node = el("div", { class: "face-tools" }, count, form, split);
    return {
      node,
      update() {
        const n = chosen.size;
        const all = n >= detail.faces.length;
        count.textContent = !n ? "No face selected." : all
          ? `All ${plural(n, "face")} selected (a new group must leave at least one here):`
          : `${plural(n, "face")} selected:`;
        move.disabled = n === 0;
        split.disabled = n === 0 || all;
      },
    };
  }

  // --- what a change did: the message where the person is, their place kept ------------

  let toastReturn = null; // where the focus goes when the message is dismissed

  /** Show what a change did at the foot of the screen (`#groups-toast`, a live region), with
   * Undo unless it is an undo's own answer; "" takes it away. */
  function toast(message, { undo = true } = {}) {
    const box = $("#groups-toast");
    $("#groups-status").textContent = message || "";
    box.classList.toggle("empty", !message);
    box.querySelector(".toast-actions").hidden = !message;
    $("#groups-toast-undo").hidden = !undo || !session.can("enroll");
  }

  function dismiss() {
    const back = toastReturn;
    toast("");
    if (back && back.isConnected && !back.closest("[hidden]")) back.focus();
    else {
      const first = $("#groups-list .group-select, #groups-list .group-open");
      (first || $("#groups-more:not([hidden])") || $("#library-undo")).focus();
    }
    return true;
  }

  /** Where the person is on the screen now: `spot(card)` (a part of the card, e.g. a face
   * or the faces' tools; the card itself by default) in the card of `id`, else in the card
   * holding the focus, else in the first card in view. */
  function placeOf(id, spot) {
    const all = cards();
    let card = id === null || id === undefined ? null : cardOf(id);
    if (!card) card = all.find((c) => c.contains(document.activeElement)) || null;
    if (!card) card = all.find((c) => c.getBoundingClientRect().bottom > 0) || null;
    if (!card) return null;
    const at = (spot && spot(card)) || card;
    return { id: Number(card.dataset.group), index: all.indexOf(card), top: at.getBoundingClientRect().top };
  }

  /** Scroll so that the same spot of the card of `id` (else of the card now where it was) is
   * where it was: the list may re-sort and the faces change, the person's place does not
   * move. The card kept. */
  function keepPlace(place, id, spot) {
    if (!place) return null;
    const all = cards();
    const card = cardOf(id ?? place.id) || all[Math.min(place.index, all.length - 1)] || null;
    if (card) {
      const same = Number(card.dataset.group) === place.id;
      const at = (same && spot && spot(card)) || card;
      window.scrollBy(0, at.getBoundingClientRect().top - place.top);
    }
    return card;
  }

  /** The screen's height above the message at its foot. */
  function clearHeight() {
    const box = $("#groups-toast");
    return window.innerHeight - (box.classList.contains("empty") ? 0 : box.getBoundingClientRect().height + 12);
  }

  /** Scroll `node` up from under the message at the foot of the screen, as little as needed
   * (its top stays in view). */
  function clearOfMessage(node) {
    const box = node.getBoundingClientRect();
    const over = box.bottom - clearHeight();
    if (over > 0 && box.top > 0) window.scrollBy(0, Math.min(over, box.top));
  }

  /** Focus `target` without moving the page, unless it is out of view (then it is brought in). */
  function focusHere(target) {
    target.focus({ preventScroll: true });
    const box = target.getBoundingClientRect();
    if (box.top < 0 || box.bottom > clearHeight()) target.scrollIntoView({ block: "center" });
  }

  /** Show an error about the groups where it is seen: in `problem` (beside the control used) while it
   * is on the page, else above the groups, scrolled to and focused. */
  function tell(message, problem = null) {
    if (problem && problem.isConnected) {
      problem.textContent = message;
      problem.hidden = false;
      problem.scrollIntoView({ block: "nearest" });
      return;
    }
    say("groups-error", message);
    $("#groups-error").scrollIntoView({ block: "nearest" });
    $("#groups-error").focus();
  }

  /**
   * Ask the server for a change to the groups, then show them as they are now: the card
   * acted on (`how.anchor`, a group id; `how.target(answer)` when the change names another)
   * stays where it was on the screen (its part `how.spot(card)`: the face or the tools
   * used), the message shows at the foot of the screen, and the focus goes to
   * `how.focus(card, answer)` (near the card, never the page's body). Its answer, or null
   * when it was refused.
   */
  async function correct(path, body, message, how = {}) {
    const { problem = null, anchor = null, spot = null, target = null, focus = null, undo = true } = how;
    const place = placeOf(anchor, spot);
    const before = document.activeElement;
    say("groups-error", "");
    toast("");
    if (problem) problem.hidden = true;
    let answer;
    try {
      answer = await api("POST", path, body === undefined ? {} : { json: body });
    } catch (error) {
      const text = error instanceof ApiError ? error.message : String(error);
      // Another page may have changed the groups meanwhile (409, 404): show them as they are now.
      if (error instanceof ApiError && [404, 409].includes(error.status)) await Promise.all([loadGroups(groups.length), loadPeople()]);
      tell(text, problem);
      return null;
    }
    await Promise.all([loadGroups(groups.length), loadPeople()]);
    toast(typeof message === "function" ? message(answer) : message, { undo });
    const card = keepPlace(place, target ? target(answer) : anchor, spot);
    const kept = card && spot && place && Number(card.dataset.group) === place.id && spot(card);
    if (kept) clearOfMessage(kept); // what was used stays in sight, above the message
    let next = focus ? focus(card, answer) : null;
    if (!next && before && before.isConnected && !before.closest("[hidden]") && before !== document.body) next = before;
    if (!next && card) next = card.querySelector(".group-select, .group-open");
    focusHere(next || $("#groups-status"));
    toastReturn = document.activeElement;
    return answer;
  }

  /** "Looks like NAME (n of m faces)" when the server identifies most of a group's faces as
   * someone enrolled (its `looks_like`), with a one-press "This is NAME"; null otherwise. */
  function looksLike(group, canChange, input, problem) {
    const like = group.looks_like;
    if (!like) return null;
    const said = el(
      "p",
      { class: "looks-like" },
      "Looks like ",
      el("strong", { text: like.name }),
      ` (${like.faces} of ${plural(like.of, "face")} recognized).`,
    );
    if (!canChange) return said;
    return el("div", { class: "row looks-like-row" }, said, thisIs(group, input, problem, like));
  }

  /** "This is NAME": names the group after the person it looks like. */
  function thisIs(group, input, problem, like) {
    return el("button", {
      type: "button",
      class: "small group-looks-yes",
      text: `This is ${like.name}`,
      onclick: () => {
        input.value = like.name;
        nameGroup(null, group, input, problem);
      },
    });
  }

  async function nameGroup(event, group, input, problem, force = false) {
    if (event) event.preventDefault();
    const typed = input.value.trim();
    if (!typed) {
      tell("Type the person's name first (spaces alone are no name).", problem);
      input.focus();
      return;
    }
    const name = knownName(typed) || typed; // "colin powell" is Colin Powell, if known
    const like = group.looks_like;
    if (like && like.name !== name && !force) {
      // the server would refuse it (409 matches_other_person): ask first, in words
      askAnyway(group, input, problem, name, like);
      return;
    }
    const known = name !== typed || people.some((p) => p.name === name);
    const named = await correct(`/api/library/groups/${group.id}/name`, force ? { name, force } : { name }, known
      ? `The group joined ${name}.`
      : `The group is now ${name}.`, {
      problem,
      anchor: group.id,
      // the card is gone: the keyboard goes on with the group now in its place
      focus: (card) => card && card.querySelector(".group-name-input"),
    });
    if (!named && problem.isConnected) input.focus();
  }

  /** The group looks like someone else than the name typed: say so beside the name, with
   * "Name them NAME anyway" (sent with force) and "This is LIKE"; the focus goes to the first. */
  function askAnyway(group, input, problem, name, like) {
    const anyway = el("button", {
      type: "button",
      class: "small secondary group-name-anyway",
      text: `Name them ${name} anyway`,
      onclick: () => nameGroup(null, group, input, problem, true),
    });
    const them = thisIs(group, input, problem, like);
    problem.replaceChildren(
      `These faces look like ${like.name} (${like.faces} of ${plural(like.of, "face")} recognized), not ${name}. `,
      el("span", { class: "row" }, anyway, them),
    );
    problem.hidden = false;
    problem.scrollIntoView({ block: "nearest" });
    anyway.focus();
  }

  async function merge() {
    const ids = [...selected];
    if (ids.length < 2) return;
    const ok = await correct("/api/library/groups/merge", { groups: ids }, (a) => `${plural(ids.length, "group")} merged into group ${a.group}.`, {
      anchor: lastTicked,
      target: (a) => a.group,
      focus: (card, a) => card && Number(card.dataset.group) === a.group && card.querySelector(".group-open"),
    });
    if (ok) {
      selected.clear();
      lastTicked = null;
      for (const tick of document.querySelectorAll("#groups-list .group-select")) tick.checked = false;
      updateTools(); // the merged group is shown unselected
    }
  }

  function hide(group) {
    return correct(`/api/library/groups/${group.id}/hide`, { hidden: !group.hidden }, group.hidden
      ? `Group ${group.id} is shown again.`
      : `Group ${group.id} is hidden. Undo brings it back.`, { anchor: group.id });
  }

  function undo(event) {
    const fromToast = event && event.currentTarget === $("#groups-toast-undo");
    return correct("/api/library/undo", undefined, undoneMessage, {
      undo: false,
      focus: () => (fromToast ? $("#groups-toast-close") : null),
    });
  }

  // --- scans -------------------------------------------------------------------------------

  let roots = []; // the library folders this server may read, as it was given them (--library-root)

  /** Say which folder(s) a scan reads, and make the folder field relative to it. */
  async function describeRoots() {
    let stats;
    try {
      stats = await api("GET", "/api/library");
    } catch (error) {
      $("#scan-roots").textContent = error.message;
      return;
    }
    roots = stats.root_folders || [];
    const none = roots.length === 0;
    $("#scan-folder").disabled = none;
    $("#scan-start").disabled = none || scanTimer !== null;
    $("#scan-folder-label").hidden = none;
    $("#scan-folder").closest(".row").hidden = none;
    $("#scan-root-choice").hidden = roots.length < 2;
    const where = $("#scan-where");
    if (none) {
      where.replaceChildren("This server may not read any folder of its own (it needs --library-root DIR): upload photos and videos below instead.");
    } else if (roots.length === 1) {
      where.replaceChildren("Photos and videos are read from ", el("code", { class: "path", text: roots[0] }), " on the server, or uploaded below.");
      $("#scan-folder-label").textContent = "Folder to scan, inside it";
    } else {
      where.replaceChildren(
        `Photos and videos are read from ${roots.length} folders on the server, or uploaded below: `,
        ...roots.flatMap((root, i) => [i ? ", " : "", el("code", { class: "path", text: root })]),
        ".",
      );
      const chosen = $("#scan-root").value;
      $("#scan-root").replaceChildren(...roots.map((root) => el("option", { value: root, text: root })));
      if (roots.includes(chosen)) $("#scan-root").value = chosen;
      $("#scan-folder-label").textContent = "Folder to scan, inside the library folder chosen";
    }
    showPrefix();
    $("#scan-roots").textContent = none
      ? ""
      : "Leave it empty to scan the whole library folder; a full path inside it works too. " +
        `The library holds ${plural(stats.done, "file")} read, ${plural(stats.faces, "face")}.`;
  }

  /** The library folder the typed folder is relative to, shown before the field. */
  function showPrefix() {
    const root = chosenRoot();
    $("#scan-prefix").hidden = !root;
    $("#scan-prefix").textContent = root ? `${root.replace(/\/+$/, "")}/` : "";
  }

  function chosenRoot() {
    return roots.length === 1 ? roots[0] : roots.length > 1 ? $("#scan-root").value : "";
  }

  /** What to ask the server to scan: the folder typed, relative to the library folder (its
   * one folder, or the one chosen), a full path as typed, or the library folder itself. */
  function folderToScan() {
    const typed = $("#scan-folder").value.trim();
    if (typed.startsWith("/") || typed.startsWith("~")) return typed; // the server checks it is inside
    const relative = typed.replace(/^(\.\/)+/, "").replace(/^\.$/, "");
    const root = chosenRoot();
    if (!relative) return root;
    if (roots.length === 1) return relative; // the server finds it inside its one folder
    return `${root.replace(/\/+$/, "")}/${relative}`;
  }

  let scanning = ""; // what the running scan reads, as the person named it

  async function startScan(request, label) {
    scanning = label;
    say("scan-error", "");
    say("scan-result", "");
    $("#scan-failures-box").hidden = true;
    $("#scan-progress").hidden = true; // the last scan's bar is not this one's
    $("#scan-start").disabled = true;
    try {
      const started = await api("POST", request.path, request.body);
      watch(started.job);
    } catch (error) {
      say("scan-error", error.message);
      $("#scan-start").disabled = false;
    }
  }

  /** A scan still running (started before this page was opened) is followed again. */
  async function resumeWatching() {
    try {
      const jobs = await api("GET", "/api/jobs");
      const running = jobs.find((job) => job.kind === "library_scan" && !FINISHED.includes(job.state));
      if (running && scanTimer === null) {
        scanning = running.input;
        $("#scan-start").disabled = true;
        watch(running.id);
      }
    } catch {
      // the jobs list is a convenience here: the scan form still works without it
    }
  }

  function watch(jobId) {
    clearTimeout(scanTimer);
    scanTimer = 0;
    $("#scan-progress").hidden = false;
    const poll = async () => {
      let job;
      try {
        job = await api("GET", `/api/jobs/${jobId}`);
      } catch (error) {
        say("scan-error", error.message);
        $("#scan-start").disabled = false;
        scanTimer = null;
        return;
      }
      $("#scan-bar").value = job.progress;
      $("#scan-message").textContent = `${Math.round(job.progress * 100)}% ${job.message || job.state}`;
      if (!FINISHED.includes(job.state)) {
        scanTimer = setTimeout(poll, POLL_MS);
        return;
      }
      $("#scan-start").disabled = false;
      scanTimer = null;
      if (job.state === "done") finished(job.result.summary);
      else say("scan-error", `The scan ${job.state}: ${(job.error && job.error.message) || ""}`);
      await Promise.all([loadGroups(groups.length), loadPeople(), describeRoots()]);
    };
    poll();
  }

  function finished(summary) {
    $("#scan-message").textContent = "100% done";
    say("scan-result", scanSentences(summary, scanning).join(" "));
    const failures = scanFailures(summary);
    $("#scan-failures-box").hidden = failures.length === 0;
    $("#scan-failures-box").open = failures.length > 0 && failures.length <= 10;
    $("#scan-failures-title").textContent = `${plural(summary.failed, "file")} could not be read`;
    $("#scan-failures").replaceChildren(...failureItems(failures));
  }

  function scanFolder(event) {
    event.preventDefault();
    const folder = folderToScan();
    if (!folder) {
      say("scan-error", "This server may not read any folder: upload photos and videos instead.");
      return;
    }
    startScan({ path: "/api/library/scan", body: { json: { folder } } }, folder);
  }

  function scanUpload(files) {
    const form = new FormData();
    form.append("file", files[0], files[0].name);
    startScan({ path: "/api/library/scan/upload", body: { form } }, `the upload ${files[0].name}`);
  }

  // --- the view ------------------------------------------------------------------------------

  async function show() {
    const name = decodeURIComponent(location.hash.split("/")[2] || "");
    $("#people-home").hidden = Boolean(name);
    $("#person-detail").hidden = !name;
    if (name) {
      await person.show(name);
      return;
    }
    $("#scan-card").hidden = !session.can("enroll");
    toast(""); // a change's message belongs to the visit it was made in
    if (session.can("enroll") && scanTimer === null) resumeWatching();
    document.querySelectorAll(".needs-enroll").forEach((node) => (node.hidden = !session.can("enroll")));
    const work = [loadPeople(), loadGroups(Math.max(groups.length, PAGE))];
    if (session.can("enroll")) work.push(describeRoots());
    await Promise.all(work);
  }

  $("#people-filter").addEventListener("input", renderPeople);
  $("#groups-more").addEventListener("click", more);
  $("#groups-merge").addEventListener("click", merge);
  $("#library-undo").addEventListener("click", undo);
  $("#groups-toast-undo").addEventListener("click", undo);
  $("#groups-toast-close").addEventListener("click", dismiss);
  onEscape(dismiss, $("#groups-toast")); // Escape in the message dismisses it
  $("#groups-hidden").addEventListener("change", () => {
    selected.clear();
    lastTicked = null;
    groups = [];
    loadGroups();
  });
  $("#scan-form").addEventListener("submit", scanFolder);
  $("#scan-root").addEventListener("change", showPrefix);
  dropZone($("#scan-drop"), $("#scan-file"), scanUpload, () => true);
  return {
    show,
    stop() {
      clearTimeout(scanTimer);
      scanTimer = null;
    },
  };
}
