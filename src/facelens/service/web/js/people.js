// People: the gallery's people, one at a time with the face crops of their photos.

import { api, ApiError, cropUrl } from "./api.js";
import { $, el, plural, say } from "./dom.js";

export function setupPeople(session) {
  let people = [];
  let selected = null;

  function renderList() {
    const filter = $("#people-filter").value.trim().toLowerCase();
    const list = $("#people-list");
    list.replaceChildren(
      ...people
        .filter((person) => person.name.toLowerCase().includes(filter))
        .map((person) =>
          el(
            "li",
            {},
            el(
              "button",
              {
                type: "button",
                class: person.name === selected ? "selected" : "",
                "data-name": person.name,
                onclick: () => showPerson(person.name),
              },
              el("span", { class: "person-name", text: person.name }),
              el("span", { class: "muted", text: plural(person.templates, "photo") }),
            ),
          ),
        ),
    );
    $("#people-count").textContent = `(${people.length})`;
    $("#people-empty").hidden = people.length > 0;
    $("#enroll-names").replaceChildren(...people.map((p) => el("option", { value: p.name })));
  }

  async function load() {
    try {
      people = await api("GET", "/api/people");
      renderList();
      if (selected && people.some((p) => p.name === selected)) await showPerson(selected);
      else $("#person-detail").hidden = true;
    } catch (error) {
      say("flash", error.message);
    }
  }

  async function showPerson(name) {
    selected = name;
    renderList();
    say("person-error", "");
    if (name.includes("/")) {
      // Only an older version could store it: a URL path segment cannot hold "/" (issue 13).
      $("#person-detail").hidden = true;
      say("flash", `"${name}" holds a "/", which names no longer may: rename or erase it with ` +
        "facelens people rename / facelens people remove on the server.");
      return;
    }
    let person;
    try {
      person = await api("GET", `/api/people/${encodeURIComponent(name)}`);
    } catch (error) {
      say("person-error", error.message);
      return;
    }
    $("#person-detail").hidden = false;
    $("#person-name").textContent = person.name;
    $("#person-meta").textContent = `${plural(person.templates, "photo")}, enrolled ${person.created_at.slice(0, 10)}`;
    $("#rename-input").value = person.name;
    $("#person-add-photos").href = `#/enroll/${encodeURIComponent(person.name)}`;
    const canSeeFaces = session.can("enroll");
    const canErase = session.can("admin");
    $("#erase-button").hidden = !canErase;
    // a query key may look, not change: the controls it cannot use are not shown
    for (const id of ["#rename-input", "#rename-button", "#person-add-photos"]) $(id).hidden = !canSeeFaces;
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
            el("div", { class: "file", text: photo.source }),
            el("div", { class: "muted", text: `quality ${photo.quality.toFixed(2)} · ${photo.created_at.slice(0, 10)}` }),
            canErase
              ? el("button", {
                  type: "button",
                  class: "small danger",
                  text: "Remove photo",
                  onclick: () => removePhoto(person.name, photo.id),
                })
              : null,
          ),
        ),
      ),
    );
  }

  async function rename() {
    const next = $("#rename-input").value.trim();
    if (!selected || !next || next === selected) return;
    try {
      const person = await api("PATCH", `/api/people/${encodeURIComponent(selected)}`, { json: { name: next } });
      selected = person.name;
      say("flash", `Renamed to ${person.name}.`);
      await load();
    } catch (error) {
      say("person-error", error instanceof ApiError ? error.message : String(error));
    }
  }

  async function erase() {
    if (!selected) return;
    if (!window.confirm(`Erase ${selected} and every photo and template of theirs? This cannot be undone.`)) return;
    try {
      const answer = await api("DELETE", `/api/people/${encodeURIComponent(selected)}`);
      say("flash", `Erased ${answer.erased} (${plural(answer.templates, "template")}); nothing of them remains in the gallery.`);
      selected = null;
      await load();
    } catch (error) {
      say("person-error", error.message);
    }
  }

  async function removePhoto(name, templateId) {
    if (!window.confirm(`Remove this photo of ${name}?`)) return;
    try {
      await api("DELETE", `/api/people/${encodeURIComponent(name)}/photos/${templateId}`);
      await load();
    } catch (error) {
      say("person-error", error.message);
    }
  }

  $("#people-filter").addEventListener("input", renderList);
  $("#rename-button").addEventListener("click", rename);
  $("#erase-button").addEventListener("click", erase);
  return { show: load };
}
