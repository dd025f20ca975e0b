// Enroll: photos of one person, each checked for faces (POST /api/detect) and shown with the
// face found before anything is saved; Save sends the usable ones (POST /api/people). A photo
// with several faces shows each as a button: the one pressed is this person's, and that photo
// is sent on its own with face=X,Y (the centre of its box, in the photo's pixels). When the
// server answers 409 matches_other_person (a photo looks like someone else already enrolled),
// nothing was saved: the warning shows each such face beside the other person's, with
// "Save anyway" (force=true) and "Leave them out".

import { api, formData } from "./api.js";
import { showLookalikes } from "./lookalike.js";
import { $, dropZone, el, faceThumbnail, loadImage, photoWithBoxes, plural, say } from "./dom.js";

/** The quality a face needs to be enrolled (USABLE_QUALITY in facelens/types.py). */
const USABLE_QUALITY = 0.3;

export function setupEnroll(session) {
  /** One entry per photo: {file, figure, caption, faces (null while checking), usable, and
   * picked: the face chosen among several (null when the photo holds one)}. */
  let entries = [];

  function update() {
    const usable = entries.filter((entry) => entry.usable);
    const checking = entries.some((entry) => entry.faces === null);
    const name = $("#enroll-name").value.trim();
    $("#enroll-save").disabled = checking || usable.length === 0 || !name || !session.can("enroll");
    say("enroll-why", whyNotSave(usable.length, checking, name));
    const unusable = entries.length - usable.length - entries.filter((e) => e.faces === null).length;
    $("#enroll-summary").textContent = entries.length
      ? `${usable.length} of ${plural(entries.length, "photo")} ready to enroll` +
        (unusable ? `, ${unusable} will be skipped` : "") +
        (checking ? " (checking…)" : "")
      : "";
  }

  /** Why Save cannot be pressed now ("" when it can, or before any photo is picked). */
  function whyNotSave(usable, checking, name) {
    if (!session.can("enroll")) {
      return "Saving needs an enroll or admin key: with this key you can check photos, not enroll them.";
    }
    if (entries.length === 0 || checking) return "";
    if (!name) return "Type the person's name to save.";
    if (usable === 0) return "No photo is ready: each needs one usable face (in a group photo, press the person's face).";
    return "";
  }

  function describe(entry, faces, width, height, image) {
    const scale = image.naturalWidth / width;
    const usable = faces.filter((face) => face.quality.value >= USABLE_QUALITY);
    const picking = usable.length > 1;
    let label;
    if (faces.length === 0) {
      label = "no face found: will be skipped";
    } else if (picking && entry.picked) {
      label = `face ${faces.indexOf(entry.picked) + 1} chosen (quality ${entry.picked.quality.value.toFixed(2)}): ready`;
    } else if (picking) {
      label = `${usable.length} faces found: press this person's face below, or it will be skipped`;
    } else if (usable.length === 0) {
      const best = faces.reduce((a, b) => (b.quality.value > a.quality.value ? b : a));
      label = `no usable face (${best.quality.reasons.join(", ") || "poor quality"}): will be skipped`;
    } else {
      label = `1 face found (quality ${usable[0].quality.value.toFixed(2)}): ready`;
    }
    const chosen = picking ? entry.picked : usable.length === 1 ? usable[0] : null;
    entry.usable = chosen !== null;
    entry.figure.className = entry.usable ? "usable" : "unusable";
    const boxes = faces.map((face, index) => {
      const good = face.quality.value >= USABLE_QUALITY;
      return {
        box: face.box,
        label: !good ? "too poor" : !picking ? "face" : `face ${index + 1}`,
        kind: face === chosen ? "known" : "rejected",
      };
    });
    entry.figure.querySelector(".photo").replaceWith(photoWithBoxes(image, width, height, boxes));
    entry.status.textContent = label;
    entry.thumbs.replaceChildren(
      ...usable.map((face) => {
        const thumb = faceThumbnail(image, face.box, scale);
        if (!picking) return thumb;
        const number = faces.indexOf(face) + 1;
        return el(
          "button",
          {
            type: "button",
            class: "face-pick",
            "aria-pressed": String(face === entry.picked),
            "aria-label": `Face ${number} is this person (${entry.file.name})`,
            onclick: () => {
              entry.picked = face === entry.picked ? null : face; // pressed again: no choice
              describe(entry, faces, width, height, image);
              update();
              entry.thumbs.querySelectorAll(".face-pick")[usable.indexOf(face)].focus();
            },
          },
          thumb,
          el("span", { class: "pick-number", text: `face ${number}` }),
        );
      }),
    );
    entry.thumb = chosen ? () => faceThumbnail(image, chosen.box, scale) : null;
  }

  async function check(entry) {
    let image;
    try {
      image = await loadImage(entry.file);
      entry.figure.querySelector(".photo").replaceChildren(image);
      const answer = await api("POST", "/api/detect", { form: formData([["image", entry.file]]) });
      entry.faces = answer.faces;
      describe(entry, answer.faces, answer.width, answer.height, image);
    } catch (error) {
      entry.faces = [];
      entry.usable = false;
      entry.figure.className = "unusable";
      entry.status.textContent = `cannot be used: ${error.message}`;
    }
    update();
  }

  function addFiles(files) {
    say("enroll-result", "");
    say("enroll-error", "");
    for (const file of files) {
      const entry = { file, faces: null, usable: false, picked: null };
      entry.status = el("div", { class: "status", text: "looking for faces…" });
      entry.thumbs = el("div", { class: "faces-found" });
      entry.figure = el(
        "figure",
        { "data-file": file.name },
        el("div", { class: "photo" }),
        el(
          "figcaption",
          {},
          el("div", { class: "file", text: file.name }),
          entry.status,
          entry.thumbs,
          el("button", {
            type: "button",
            class: "small secondary",
            text: "Remove",
            onclick: () => {
              entries = entries.filter((other) => other !== entry);
              entry.figure.remove();
              update();
            },
          }),
        ),
      );
      entries.push(entry);
      $("#enroll-previews").append(entry.figure);
      check(entry);
    }
    update();
  }

  /** The requests Save makes: the photos holding one face together, then each photo whose
   * face was chosen on its own, with the centre of that face as `face`. */
  function batches(usable) {
    const whole = usable.filter((entry) => !entry.picked);
    const picked = usable.filter((entry) => entry.picked);
    return [
      ...(whole.length ? [{ entries: whole, face: null }] : []),
      ...picked.map((entry) => {
        const [x, y, w, h] = entry.picked.box;
        return { entries: [entry], face: `${(x + w / 2).toFixed(1)},${(y + h / 2).toFixed(1)}` };
      }),
    ];
  }

  async function save(force = false) {
    const name = $("#enroll-name").value.trim();
    say("enroll-error", "");
    hideWarning();
    $("#enroll-save").disabled = true;
    let accepted = 0;
    let rejected = 0;
    let person = null;
    for (const batch of batches(entries.filter((entry) => entry.usable))) {
      try {
        const fields = [["name", name], ...(force ? [["force", "true"]] : []), ...(batch.face ? [["face", batch.face]] : [])];
        const form = formData([...fields, ...batch.entries.map((entry) => ["photos", entry.file])]);
        const answer = await api("POST", "/api/people", { form });
        answer.photos.forEach((outcome, index) => {
          const entry = batch.entries[index];
          entry.figure.className = outcome.accepted ? "accepted" : "rejected";
          entry.status.textContent = outcome.accepted ? "enrolled" : `not enrolled: ${outcome.reason}`;
        });
        accepted += answer.accepted;
        rejected += answer.rejected;
        person = answer.person;
        const sent = new Set(batch.entries);
        entries = entries.filter((entry) => !sent.has(entry));
      } catch (error) {
        if (person) report(accepted, rejected, person);
        if (error.code === "matches_other_person" && error.details) {
          await warn(error, batch.entries, name);
          update();
          return;
        }
        const reasons = ((error.details && error.details.photos) || []).map((p) => `${p.source}: ${p.reason}`);
        say("enroll-error", [error.message, ...reasons].join(" — "));
        update();
        return;
      }
    }
    report(accepted, rejected, person);
    entries = [];
    $("#enroll-result").focus(); // Save is disabled now: the keyboard goes on from what was done
    update();
  }

  function report(accepted, rejected, person) {
    say(
      "enroll-result",
      `Enrolled ${accepted} photo${accepted === 1 ? "" : "s"} of ${person.name}` +
        ` (now ${person.templates} in the gallery)` +
        (rejected ? `; ${rejected} rejected` : "") + ".",
    );
  }

  function hideWarning() {
    const box = $("#enroll-warning");
    box.hidden = true;
    box.replaceChildren();
  }

  /** Nothing was saved: show each photo that matches someone else beside that person's face. */
  async function warn(error, usable, name) {
    const conflicts = [];
    error.details.photos.forEach((outcome, index) => {
      const entry = usable[index];
      if (!entry || outcome.code !== "matches_other_person" || !outcome.matches) return;
      conflicts.push({ entry, thumb: entry.thumb ? entry.thumb() : null, label: entry.file.name, other: outcome.matches });
      entry.figure.className = "rejected";
      entry.status.textContent = `looks like ${outcome.matches.name}: not saved yet`;
    });
    await showLookalikes($("#enroll-warning"), conflicts, name, { force: "enroll-force", leave: "enroll-drop-lookalikes" }, {
      onForce: () => save(true),
      onLeave: () => {
        const held = new Set(conflicts.map(({ entry }) => entry));
        entries = entries.filter((entry) => !held.has(entry));
        held.forEach((entry) => entry.figure.remove());
        hideWarning();
        update();
      },
      onDismiss: () => {
        hideWarning();
        update();
        return $("#enroll-save").disabled ? $("#enroll-name") : $("#enroll-save");
      },
    });
  }

  function clear() {
    entries = [];
    hideWarning();
    $("#enroll-previews").replaceChildren();
    say("enroll-result", "");
    say("enroll-error", "");
    update();
  }

  dropZone($("#enroll-drop"), $("#enroll-files"), addFiles, undefined, "enroll-error");
  $("#enroll-name").addEventListener("input", update);
  $("#enroll-save").addEventListener("click", () => save());
  $("#enroll-clear").addEventListener("click", clear);

  return {
    show() {
      const preset = decodeURIComponent(location.hash.split("/")[2] || "");
      if (preset) $("#enroll-name").value = preset;
      update();
    },
  };
}
