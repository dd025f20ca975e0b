// Identify: who is each face of a photo (POST /api/identify); boxes and names drawn on the
// photo, unknown faces marked in red. Faces are numbered left to right; on a crowded photo
// the boxes show their numbers and the list below names them.

import { api, formData } from "./api.js";
import { $, dropZone, el, loadImage, oneIn, photoWithBoxes, plural, say } from "./dom.js";

export function setupIdentify() {
  let current = null;

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
      const photo = photoWithBoxes(image, answer.width, answer.height, faces);
      $("#identify-photo").replaceChildren(photo);
      if (found.length === 0) {
        $("#identify-status").textContent = `No face found in ${file.name}.`;
        return;
      }
      const known = found.filter((face) => face.identity).length;
      $("#identify-status").textContent =
        `${plural(found.length, "face")} in ${file.name}: ` +
        `${known} identified, ${found.length - known} unknown ` +
        `(threshold ${answer.threshold.toFixed(3)}, false-match rate ${oneIn(answer.fmr)} per comparison)`;
      const highlight = (index, on) => {
        photo.querySelector(`.face-box[data-face="${index}"]`).classList.toggle("focus", on);
        $(`#identify-results li[data-face="${index}"]`).classList.toggle("focus", on);
      };
      $("#identify-results").classList.toggle("many", found.length > 6);
      $("#identify-results").replaceChildren(
        ...found.map((face, index) => {
          const best = face.candidates[0];
          return el(
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
                  (face.llr !== null && face.llr !== undefined ? `, likelihood ratio 10^${face.llr.toFixed(1)}` : ""),
            }),
          );
        }),
      );
    } catch (error) {
      $("#identify-status").textContent = "";
      say("identify-error", error.message);
    }
  }

  dropZone($("#identify-drop"), $("#identify-file"), (files) => identify(files[0]));
  $("#identify-fmr").addEventListener("change", () => current && identify(current));
  return { show() {} };
}
