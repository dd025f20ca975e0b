// Verify: are the main faces of two photos the same person (POST /api/verify)?

import { api, formData } from "./api.js";
import { $, dropZone, el, loadImage, odds, oneIn, photoWithBoxes, say } from "./dom.js";

export function setupVerify() {
  const chosen = { a: null, b: null };

  async function choose(slot, file) {
    chosen[slot] = { file, image: await loadImage(file).catch(() => null) };
    $("#verify-result").hidden = true;
    say("verify-error", chosen[slot].image ? "" : `${file.name} cannot be previewed here (a damaged file, or a format only the server reads, such as TIFF or PGM)`);
    $(`#verify-photo-${slot}`).replaceChildren(
      chosen[slot].image || el("p", { text: file.name }),
      el("div", { class: "muted", text: file.name }),
    );
    $("#verify-button").disabled = !(chosen.a && chosen.b);
  }

  function showFace(slot, face) {
    const { image, file } = chosen[slot];
    if (!image) return;
    const frame = photoWithBoxes(image, image.naturalWidth, image.naturalHeight, [
      { box: face.box, label: "compared face", kind: "known" },
    ]);
    $(`#verify-photo-${slot}`).replaceChildren(frame, el("div", { class: "muted", text: file.name }));
  }

  async function compare() {
    say("verify-error", "");
    $("#verify-result").hidden = true;
    $("#verify-button").disabled = true;
    $("#verify-status").textContent = "comparing…";
    try {
      const answer = await api("POST", "/api/verify", {
        form: formData([["image_a", chosen.a.file], ["image_b", chosen.b.file]]),
      });
      showFace("a", answer.face_a);
      showFace("b", answer.face_b);
      const verdict = $("#verify-result");
      verdict.className = `verdict ${answer.same ? "same" : "different"}`;
      verdict.replaceChildren(
        el("strong", { text: answer.same ? "Same person" : "Different people" }),
        el("div", {
          class: "muted",
          text:
            `score ${answer.score.toFixed(3)} against threshold ${answer.threshold.toFixed(3)} ` +
            `(false-match rate ${oneIn(answer.fmr)})` +
            (answer.llr !== null && answer.llr !== undefined
              ? `; a score this high is ${odds(answer.llr)}`
              : ""),
        }),
      );
      verdict.hidden = false;
      verdict.tabIndex = -1;
      verdict.focus(); // the Compare button was disabled while comparing: the keyboard goes on here
    } catch (error) {
      say("verify-error", error.message);
    } finally {
      $("#verify-status").textContent = "";
      $("#verify-button").disabled = !(chosen.a && chosen.b);
      if (document.activeElement === document.body) $("#verify-button").focus();
    }
  }

  dropZone($("#verify-drop-a"), $("#verify-a"), (files) => choose("a", files[0]), undefined, "verify-error");
  dropZone($("#verify-drop-b"), $("#verify-b"), (files) => choose("b", files[0]), undefined, "verify-error");
  $("#verify-button").addEventListener("click", compare);
  return { show() {} };
}
