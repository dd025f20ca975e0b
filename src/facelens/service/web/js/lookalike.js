// The 409 matches_other_person warning of an enrollment, shared by Enroll and Identify:
// nothing was saved; each held-back face is shown beside the other person's stored face,
// with "Save anyway" (force=true) and "Leave out".

import { api, cropUrl } from "./api.js";
import { el, onEscape } from "./dom.js";

/** The first stored face crop of `name` (an <img>), or a note when it cannot be shown. */
export async function storedFace(name) {
  try {
    const person = await api("GET", `/api/people/${encodeURIComponent(name)}`);
    if (person.photos.length) {
      return el("img", { class: "crop", src: cropUrl(name, person.photos[0].id), alt: `face of ${name} in the gallery` });
    }
  } catch (error) {
    return el("p", { class: "muted", text: `(${error.message})` });
  }
  return el("p", { class: "muted", text: "(no stored face)" });
}

/**
 * Fill `box` with the warning. `conflicts`: [{thumb: element or null, label, other: {name,
 * score}}]; `name`: the person being saved; `ids`: {force, leave} element ids of the two
 * buttons; `onForce()` saves anyway, `onLeave()` leaves the faces out. Focus goes to the title.
 * Escape in the warning calls `onDismiss()` (nothing saved, nothing left out): it hides the
 * warning and answers the control to focus again (the one that tried to save).
 */
export async function showLookalikes(box, conflicts, name, ids, { onForce, onLeave, onDismiss }) {
  const rows = await Promise.all(
    conflicts.map(async ({ thumb, label, other }) =>
      el(
        "li",
        { class: "lookalike", "data-file": label },
        el(
          "div",
          { class: "faces" },
          el("figure", {}, thumb, el("figcaption", { class: "file", text: label })),
          el("span", { class: "versus", text: "looks like" }),
          el("figure", {}, await storedFace(other.name), el("figcaption", { class: "file", text: other.name })),
        ),
        el("p", {
          class: "muted",
          text: `score ${other.score.toFixed(2)} with ${other.name}, above the threshold and higher than with ${name}`,
        }),
      ),
    ),
  );
  const one = conflicts.length === 1;
  box.replaceChildren(
    el("h3", { tabindex: "-1", text: `Nothing was saved: ${one ? "this photo looks" : "these photos look"} like someone else` }),
    el("p", {
      text:
        `${one ? "Its face matches" : "Their faces match"} another enrolled person better ` +
        `than ${name}. Saved as ${name}, that person would then be identified as ${name} too.`,
    }),
    el("ul", { class: "lookalikes" }, ...rows),
    el(
      "div",
      { class: "row" },
      el("button", { type: "button", id: ids.force, class: "danger", text: `Save anyway as ${name}`, onclick: onForce }),
      el("button", {
        type: "button",
        id: ids.leave,
        class: "secondary",
        text: one ? "Leave this photo out" : "Leave these photos out",
        onclick: onLeave,
      }),
    ),
  );
  box.hidden = false;
  onEscape(() => !box.hidden && onDismiss(), box);
  box.querySelector("h3").focus();
}
