// Identify: who is each face of a photo (POST /api/identify); boxes and names drawn on the
// photo, unknown faces marked in red.

import { api, formData } from "./api.js";
import { $, dropZone, el, loadImage, oneIn, photoWithBoxes, say } from "./dom.js";

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
      const faces = answer.faces.map((face) => ({
        box: face.box,
        label: face.identity || "unknown",
        kind: face.identity ? "known" : "unknown",
        title: face.score === null ? "empty gallery" : `score ${face.score.toFixed(3)}`,
      }));
      $("#identify-photo").replaceChildren(photoWithBoxes(image, answer.width, answer.height, faces));
      const known = answer.faces.filter((face) => face.identity).length;
      $("#identify-status").textContent =
        `${answer.faces.length} face${answer.faces.length === 1 ? "" : "s"} in ${file.name}: ` +
        `${known} identified, ${answer.faces.length - known} unknown ` +
        `(threshold ${answer.threshold.toFixed(3)}, false-match rate ${oneIn(answer.fmr)} per comparison)`;
      $("#identify-results").replaceChildren(
        ...answer.faces.map((face, index) => {
          const best = face.candidates[0];
          return el(
            "li",
            { "data-face": index },
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
