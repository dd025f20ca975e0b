// One person's page (#/people/NAME): every photo of the library they appear in, their face
// marked, and every video moment (a click plays the video from there), from
// GET /api/people/{name}/appearances; "Not this person" on each; their enrolled faces,
// rename, add photos and erase (by role). Only the person the URL names is ever drawn: an
// answer about anyone else (a page left while it loaded) is dropped, and a name nobody has
// (renamed, erased, mistyped) leaves nothing of the person shown before.

import { api, ApiError, cropUrl } from "./api.js";
import { $, cancelOnEscape, el, flashNext, onEscape, plural, say, undoneMessage } from "./dom.js";
import { baseName, libraryPhoto, videoMoments, videoWithMoments } from "./media.js";

export function setupPerson(session, { onChange }) {
  let current = null; // the name the URL asks for
  let drawn = null; // whose enrolled faces and controls are on the page (null: nobody's)
  let asked = 0; // show() calls so far: an answer to an earlier one is not drawn
  let askedAppearances = 0; // the same for appearances()

  function how(found) {
    return found.how === "identified" ? `recognised (score ${found.score.toFixed(2)})` : "named in the library";
  }

  function notThem(faces, name) {
    if (!session.can("enroll")) return null;
    return el("button", {
      type: "button",
      class: "small danger not-them",
      text: "Not this person",
      onclick: async () => {
        say("person-error", "");
        try {
          for (const face of faces) {
            await api("POST", `/api/people/${encodeURIComponent(name)}/appearances/${face}/reject`);
          }
          say("person-status", faces.length === 1 ? `That face is no longer shown as ${name}.` : `Those ${faces.length} faces are no longer shown as ${name}.`);
          $("#person-undo").hidden = false;
        } catch (error) {
          say("person-error", error.message);
        }
        await appearances(name);
      },
    });
  }

  /** "Someone else…": these faces are another person (known or new); they move to them. */
  function someoneElse(faces, name) {
    if (!session.can("enroll")) return null;
    const input = el("input", {
      type: "text",
      class: "other-person-input",
      list: "people-names",
      maxlength: 200,
      placeholder: "Who is it?",
      "aria-label": faces.length === 1 ? `Who this face is, if not ${name}` : `Who these ${faces.length} faces are, if not ${name}`,
      required: true,
    });
    const problem = el("p", { class: "error", role: "alert", hidden: true });
    const details = el(
      "details",
      { class: "someone-else" },
      el("summary", { text: "Someone else…" }),
      el(
        "form",
        {
          class: "row move-person",
          onsubmit: async (event) => {
            event.preventDefault();
            const other = input.value.trim();
            problem.hidden = !(!other || other === name);
            problem.textContent = !other ? "Type who it is." : `That is ${name}: type who it is instead.`;
            if (!problem.hidden) return input.focus();
            say("person-error", "");
            say("person-status", "");
            try {
              await api("POST", "/api/library/faces/name", { json: { faces, name: other } });
              say("person-status", `${faces.length === 1 ? "That face" : `Those ${faces.length} faces`} moved to ${other}.`);
              $("#person-undo").hidden = false;
              onChange();
            } catch (error) {
              say("person-error", error instanceof ApiError ? error.message : String(error));
            }
            await appearances(name);
          },
        },
        input,
        el("button", { type: "submit", class: "small", text: "Move" }),
      ),
      problem,
    );
    // Escape in it closes it, forgets what was typed, and gives the focus back to its summary
    onEscape(() => {
      if (!details.open) return false;
      details.open = false;
      input.value = "";
      problem.hidden = true;
      return details.querySelector("summary");
    }, details);
    return details;
  }

  async function appearances(name) {
    const ticket = ++askedAppearances;
    const late = () => ticket !== askedAppearances || current !== name;
    let found;
    try {
      found = await api("GET", `/api/people/${encodeURIComponent(name)}/appearances`);
    } catch (error) {
      if (!late()) say("person-error", error.message);
      return;
    }
    if (late()) return;
    const photos = found.filter((a) => a.time === null);
    $("#appearance-photos-count").textContent = `(${photos.length})`;
    $("#appearance-photos-title").hidden = photos.length === 0;
    $("#appearance-photos").replaceChildren(
      ...photos.map((a) =>
        el(
          "figure",
          { class: "appearance", "data-face": a.face, "data-item": a.item },
          libraryPhoto(a.item, `${name} in ${baseName(a.source)}`, [{ box: a.box, label: name, kind: "known" }],
            el("img", { class: "crop", src: a.crop_url, alt: `face of ${name}` })),
          el(
            "figcaption",
            {},
            el("div", { class: "file", title: a.source, text: baseName(a.source) }),
            el("div", { class: "muted", text: how(a) }),
            notThem([a.face], name),
            someoneElse([a.face], name),
          ),
        ),
      ),
    );
    const videos = videoMoments(found);
    const moments = videos.reduce((sum, v) => sum + v.moments.length, 0);
    const sightings = found.length - photos.length; // faces in frames: a moment holds several
    $("#appearance-videos-count").textContent = `(${plural(moments, "moment")} in ${plural(videos.length, "video")}, ${plural(sightings, "face")} seen)`;
    $("#appearance-videos-title").hidden = videos.length === 0;
    $("#appearance-videos").replaceChildren(...videos.map((v) => videoWithMoments(v, (m) => el("div", { class: "moment-tools" }, notThem(m.faces, name), someoneElse(m.faces, name)))));
    if (!photos.length && !videos.length) {
      $("#appearance-photos").replaceChildren(
        el("p", { class: "muted span-all", text: `${name} is not found in the library yet: scan photos or videos, or name a group of faces.` }),
      );
    }
  }

  async function undo() {
    if (!current) return;
    say("person-error", "");
    try {
      const answer = await api("POST", "/api/library/undo");
      say("person-status", undoneMessage(answer));
      onChange();
    } catch (error) {
      say("person-error", error.message);
    }
    $("#person-undo").hidden = true;
    await appearances(current);
  }

  /** Nothing of the person drawn before stays: no faces, no name to rename, no buttons. */
  function clearPerson() {
    drawn = null;
    $("#person-meta").textContent = "";
    $("#rename-input").defaultValue = "";
    $("#rename-input").value = "";
    $("#person-add-photos").href = "#/enroll";
    $("#person-actions").hidden = true;
    $("#person-photos").replaceChildren();
    $("#person-photos-title").hidden = true;
    $("#person-missing").hidden = true;
  }

  async function show(name) {
    const ticket = ++asked;
    current = name;
    say("person-error", "");
    say("person-status", "");
    $("#person-undo").hidden = true;
    $("#person-name").textContent = name;
    if (drawn !== name) clearPerson(); // another person's faces never stay while this one loads
    ++askedAppearances; // and their appearances still on the way are not drawn
    $("#appearance-photos").replaceChildren();
    $("#appearance-videos").replaceChildren();
    $("#appearance-photos-title").hidden = true;
    $("#appearance-videos-title").hidden = true;
    let person;
    try {
      person = await api("GET", `/api/people/${encodeURIComponent(name)}`);
    } catch (error) {
      if (ticket !== asked) return; // the page shows someone else now
      clearPerson();
      if (error instanceof ApiError && error.code === "person_not_found") {
        say("person-error", `Nobody called "${name}" is in the gallery: they may have been renamed or erased.`);
        $("#person-missing").hidden = false;
        if (!$("#person-detail").contains(document.activeElement)) $("#person-name").focus();
      } else {
        say("person-error", error.message);
      }
      return;
    }
    if (ticket !== asked) return;
    current = drawn = person.name; // as the gallery writes it (the URL may differ in case)
    $("#person-photos-title").hidden = false;
    // The faces recognition compares with (a named group enrolls its best few; every face of
    // it is an appearance below): from a photo or a frame of a video, "faces" is true of both.
    $("#person-meta").textContent = `${plural(person.templates, "enrolled face")}, since ${person.created_at.slice(0, 10)}: the ones recognition compares with`;
    $("#rename-input").defaultValue = person.name; // what Escape in the field goes back to
    $("#rename-input").value = person.name;
    $("#person-add-photos").href = `#/enroll/${encodeURIComponent(person.name)}`;
    const canSeeFaces = session.can("enroll");
    const canErase = session.can("admin");
    $("#erase-button").hidden = !canErase;
    // a query key may look, not change: the controls it cannot use are not shown
    for (const id of ["#rename-form", "#person-add-photos"]) $(id).hidden = !canSeeFaces;
    $("#person-actions").hidden = !canSeeFaces && !canErase;
    $("#person-photos").replaceChildren(
      ...person.photos.map((photo) =>
        el(
          "figure",
          { "data-template": photo.id },
          canSeeFaces
            ? el("img", { src: cropUrl(person.name, photo.id), alt: `face of ${person.name} from ${photo.source}`, class: "crop" })
            : el("p", { class: "muted", text: "face crops need an enroll or admin key" }),
          el(
            "figcaption",
            {},
            el("div", { class: "file", title: photo.source, text: baseName(photo.source) }),
            el("div", { class: "muted", text: `quality ${photo.quality.toFixed(2)} · ${photo.created_at.slice(0, 10)}` }),
            canErase
              ? el("button", {
                  type: "button",
                  class: "small danger",
                  text: "Remove face", // it may come from a photo or a video's frame
                  onclick: () => removePhoto(person.name, photo.id),
                })
              : null,
          ),
        ),
      ),
    );
    const focused = document.activeElement;
    if (!focused || focused === document.body || !$("#person-detail").contains(focused)) {
      $("#person-name").focus(); // a page opened (or its button went): the keyboard starts at its title
    }
    await appearances(person.name);
  }

  async function rename(event) {
    event.preventDefault();
    const next = $("#rename-input").value.trim();
    if (!drawn) return;
    say("person-status", "");
    if (!next || next === drawn) {
      say("person-error", next ? `${drawn} is already their name: type a new one.` : "Type the new name first.");
      $("#rename-input").focus();
      return;
    }
    say("person-error", "");
    try {
      const person = await api("PATCH", `/api/people/${encodeURIComponent(drawn)}`, { json: { name: next } });
      flashNext(`Renamed to ${person.name}.`);
      // the old name's page is gone: it is replaced in the history, so Back does not land on it
      location.replace(`#/people/${encodeURIComponent(person.name)}`);
      onChange();
    } catch (error) {
      say("person-error", error instanceof ApiError ? error.message : String(error));
    }
  }

  async function erase() {
    if (!drawn) return;
    if (!window.confirm(`Erase ${drawn} and every photo and template of theirs? This cannot be undone.`)) return;
    try {
      const answer = await api("DELETE", `/api/people/${encodeURIComponent(drawn)}`);
      current = null;
      drawn = null;
      flashNext(`Erased ${answer.erased} (${plural(answer.templates, "template")}); nothing of them remains in the gallery.`);
      location.replace("#/people"); // Back does not land on their page, now gone
    } catch (error) {
      say("person-error", error.message);
    }
  }

  async function removePhoto(name, templateId) {
    if (!window.confirm(`Remove this enrolled face of ${name}?`)) return;
    try {
      await api("DELETE", `/api/people/${encodeURIComponent(name)}/photos/${templateId}`);
      await show(name);
    } catch (error) {
      say("person-error", error.message);
    }
  }

  $("#rename-form").addEventListener("submit", rename);
  cancelOnEscape($("#rename-input"), () => $("#rename-input").defaultValue); // Escape: the name as it is
  $("#person-undo").addEventListener("click", undo);
  $("#erase-button").addEventListener("click", erase);
  return { show };
}
