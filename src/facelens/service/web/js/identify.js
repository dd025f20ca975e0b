// Identify: who is each face of a photo (POST /api/identify); boxes and names drawn on the
// photo, unknown faces marked in red. Faces are numbered left to right; on a crowded photo
// the boxes show their numbers and the list below names them. An unknown face can be named
// where it is met (enroll key): "This is NAME" adds it to someone enrolled, "New person NAME"
// enrolls them; the photo is sent with the centre of that face (face=X,Y) so the server
// enrolls that face of it.

import { api, formData } from "./api.js";
import { $, cancelOnEscape, declutter, dropZone, el, faceThumbnail, loadImage, odds, oneIn, photoWithBoxes, plural, say } from "./dom.js";
import { showLookalikes } from "./lookalike.js";
import { loadNames } from "./people.js";

export function setupIdentify(session) {
  let current = null;
  let known = new Set();

  /** The form that names unknown face `index` (shown only to enroll and admin keys). */
  function nameForm(face, index, image, scale, photo, item) {
    const input = el("input", {
      type: "text",
      list: "people-names",
      maxlength: 200,
      placeholder: "a name",
      "aria-label": `Who is face ${index + 1}`,
      class: "name-face-input",
    });
    const button = el("button", { type: "submit", class: "small", text: "This is…", disabled: true });
    const warning = el("div", { class: "warning", role: "alert", hidden: true });
    const message = el("p", { class: "error", role: "alert", hidden: true });
    const label = () => {
      const name = input.value.trim();
      button.disabled = !name;
      button.textContent = !name ? "This is…" : known.has(name) ? `This is ${name}` : `New person: ${name}`;
    };
    input.addEventListener("input", label);
    cancelOnEscape(input); // Escape empties the name typed
    const save = async (force) => {
      const name = input.value.trim();
      if (!name) return;
      message.hidden = true;
      warning.hidden = true;
      button.disabled = true;
      const [x, y, w, h] = face.box; // the server's pixels: its centre picks this face of the photo
      try {
        const file = current;
        const fields = [["face", `${(x + w / 2).toFixed(1)},${(y + h / 2).toFixed(1)}`], ...(force ? [["force", "true"]] : [])];
        const adding = known.has(name);
        const answer = adding
          ? await api("POST", `/api/people/${encodeURIComponent(name)}/photos`, { form: formData([...fields, ["photos", file]]) })
          : await api("POST", "/api/people", { form: formData([["name", name], ...fields, ["photos", file]]) });
        const who = answer.person.name;
        const shown = item.querySelector(".unknown");
        shown.textContent = who;
        shown.className = "known";
        shown.nextElementSibling.textContent = " — named here";
        form.replaceWith(el("p", { class: "ok", role: "status", text: adding ? `Added to ${who}.` : `${who} is enrolled with this face.` }));
        const tag = photo.querySelector(`.face-box[data-face="${index}"]`);
        tag.classList.remove("unknown");
        tag.querySelector(".tag").dataset.label = who;
        declutter(photo);
        known = new Set((await loadNames()).map((p) => p.name));
      } catch (error) {
        button.disabled = false;
        if (error.code === "matches_other_person" && error.details) {
          const outcome = error.details.photos.find((o) => o.matches);
          if (outcome) {
            const thumb = faceThumbnail(image, face.box, scale);
            await showLookalikes(warning, [{ thumb, label: `face ${index + 1}`, other: outcome.matches }], name,
              { force: `identify-force-${index}`, leave: `identify-leave-${index}` },
              {
                onForce: () => save(true),
                onLeave: () => { warning.hidden = true; input.value = ""; label(); input.focus(); },
                onDismiss: () => { warning.hidden = true; return input; }, // Escape: back to the name
              });
            return;
          }
        }
        const reasons = ((error.details && error.details.photos) || []).map((p) => p.reason).filter(Boolean);
        message.textContent = [error.message, ...reasons].join(" — ");
        message.hidden = false;
      }
    };
    const form = el(
      "form",
      { class: "row name-face", onsubmit: (event) => { event.preventDefault(); save(false); } },
      input,
      button,
    );
    return [form, message, warning];
  }

  async function identify(file) {
    current = file;
    say("identify-error", "");
    $("#identify-results").replaceChildren();
    $("#identify-photo").replaceChildren();
    $("#identify-status").textContent = `identifying ${file.name}…`;
    try {
      const image = await loadImage(file);
      const fmr = $("#identify-fmr").value;
      const answer = await api("POST", `/api/identify?fmr=${encodeURIComponent(fmr)}`, {
        form: formData([["image", file]]),
      });
      if (current !== file) return; // another photo was chosen meanwhile
      // numbered left to right: the tags on the photo and the list below share the numbers
      const found = [...answer.faces].sort((a, b) => a.box[0] - b.box[0] || a.box[1] - b.box[1]);
      const faces = found.map((face) => ({
        box: face.box,
        label: face.identity || "unknown",
        kind: face.identity ? "known" : "unknown",
        title: face.score === null ? "empty gallery" : `score ${face.score.toFixed(3)}`,
      }));
      // several faces: each box carries its number in the list below ("2. unknown")
      const photo = photoWithBoxes(image, answer.width, answer.height, faces, { numbers: faces.length > 1 });
      const scale = image.naturalWidth / answer.width;
      const canName = session.can("enroll");
      if (canName) known = new Set((await loadNames()).map((p) => p.name));
      $("#identify-photo").replaceChildren(photo);
      if (found.length === 0) {
        $("#identify-status").textContent = `No face found in ${file.name}.`;
        return;
      }
      const identified = found.filter((face) => face.identity).length;
      $("#identify-status").textContent =
        `${plural(found.length, "face")} in ${file.name}: ` +
        `${identified} identified, ${found.length - identified} unknown ` +
        `(threshold ${answer.threshold.toFixed(3)}, false-match rate ${oneIn(answer.fmr)} per comparison)`;
      const highlight = (index, on) => {
        photo.querySelector(`.face-box[data-face="${index}"]`).classList.toggle("focus", on);
        $(`#identify-results li[data-face="${index}"]`).classList.toggle("focus", on);
      };
      $("#identify-results").classList.toggle("many", found.length > 6);
      $("#identify-results").replaceChildren(
        ...found.map((face, index) => {
          const best = face.candidates[0];
          const item = el(
            "li",
            {
              "data-face": index,
              tabindex: 0,
              onmouseenter: () => highlight(index, true),
              onmouseleave: () => highlight(index, false),
              onfocus: () => highlight(index, true),
              onblur: () => highlight(index, false),
            },
            el("span", { class: face.identity ? "known" : "unknown", text: face.identity || "unknown" }),
            el("span", {
              text: face.score === null
                ? " — the gallery is empty"
                : ` — score ${face.score.toFixed(3)}` +
                  (face.identity ? "" : best ? ` (closest: ${best.name})` : "") +
                  (face.llr !== null && face.llr !== undefined ? `; ${odds(face.llr)}` : ""),
            }),
          );
          if (canName && !face.identity) item.append(...nameForm(face, index, image, scale, photo, item));
          return item;
        }),
      );
    } catch (error) {
      $("#identify-status").textContent = "";
      say("identify-error", error.message);
    }
  }

  dropZone($("#identify-drop"), $("#identify-file"), (files) => identify(files[0]), undefined, "identify-error");
  $("#identify-fmr").addEventListener("change", () => current && identify(current));
  return { show() {} };
}
