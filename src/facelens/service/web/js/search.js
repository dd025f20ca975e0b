// Search by photo (#/search): the photo's largest face is looked for in the whole library
// (POST /api/library/search); every appearance is listed best first with its evidence in
// words: how sure, how often a stranger would score as high, and where (a photo with the
// face marked, or the video played from that moment).

import { api, formData } from "./api.js";
import { $, dropZone, el, loadImage, oneIn, onEscape, plural, say } from "./dom.js";
import { baseName, clock, libraryPhoto, videoWithMoments } from "./media.js";

/** The calibrated log10 likelihood ratio as a sentence ("1,000 times likelier ..."). */
function evidence(llr) {
  if (llr === null || llr === undefined) return "";
  const ratio = Math.pow(10, Math.abs(llr));
  const times = ratio >= 1e6 ? `over a million` : Math.round(ratio).toLocaleString("en");
  if (llr >= 0) return `A face this alike is ${times} times likelier from the same person than from two different people.`;
  return `A face this alike is ${times} times likelier from two different people than from the same person.`;
}

/** How sure, in a word, from the likelihood ratio (and the operating point's verdict). */
function verdict(hit) {
  if (!hit.match) return "Probably someone else";
  if (hit.llr !== null && hit.llr >= 4) return "Almost certainly the same person";
  if (hit.llr !== null && hit.llr >= 2) return "Very likely the same person";
  return "Likely the same person";
}

export function setupSearch() {
  let current = null;

  function where(hit, box) {
    box.hidden = !box.hidden;
    if (box.hidden) box.querySelectorAll("video").forEach((video) => video.pause()); // closed: quiet
    if (box.hidden || box.childElementCount) return;
    if (hit.kind === "video") {
      const moment = { start: hit.time, end: hit.time, faces: [hit.face] };
      box.append(videoWithMoments({ item: hit.item, source: hit.source, moments: [moment] }));
      box.querySelector("button.moment").click(); // opened to see the moment: play it
    } else {
      box.append(libraryPhoto(hit.item, `the face in ${baseName(hit.source)}`, [{ box: hit.box, label: `${hit.rank}`, kind: "known" }]));
    }
  }

  function row(hit) {
    const box = el("div", { class: "where", hidden: true });
    const place = hit.time === null ? "photo" : `video at ${clock(hit.time)}`;
    const button = el("button", {
      type: "button",
      class: "secondary small show-where",
      "aria-expanded": "false",
      text: hit.kind === "video" ? "Play the moment" : "Show the photo",
      onclick: () => {
        where(hit, box);
        button.setAttribute("aria-expanded", String(!box.hidden));
      },
    });
    // Escape in the photo or moment shown (or on its button) closes it; focus back to the button
    onEscape(() => {
      if (box.hidden) return false;
      where(hit, box);
      button.setAttribute("aria-expanded", "false");
      return button;
    }, box, button);
    return el(
      "li",
      { class: `hit ${hit.match ? "match" : "below"}`, "data-face": hit.face },
      el(
        "div",
        { class: "hit-head" },
        hit.crop_url ? el("img", { class: "crop", src: hit.crop_url, alt: `face ${hit.rank}`, loading: "lazy" }) : null,
        el(
          "div",
          { class: "hit-text" },
          el("strong", { class: "verdict-word", text: `${hit.rank}. ${verdict(hit)}` }),
          el("div", { class: "file", title: hit.source, text: `${baseName(hit.source)} (${place})` }),
          el("div", { class: "muted evidence", text: evidence(hit.llr) }),
          el("div", {
            class: "muted",
            text: `Score ${hit.score.toFixed(3)}: ` + (hit.score_fmr > 0
              ? `two strangers score this high about ${oneIn(hit.score_fmr)} times.`
              : "no two strangers of the calibration scored this high."),
          }),
          hit.item ? button : null,
        ),
      ),
      box,
    );
  }

  async function search(file) {
    current = file;
    say("search-error", "");
    $("#search-results").replaceChildren();
    $("#search-status").textContent = `looking for the face of ${file.name} in the library…`;
    try {
      const image = await loadImage(file);
      image.className = "probe";
      $("#search-probe").replaceChildren(image);
      const below = $("#search-below").checked ? "?include_below=true" : "";
      const answer = await api("POST", `/api/library/search${below}`, { form: formData([["photo", file]]) });
      if (current !== file) return;
      const matches = answer.appearances.filter((a) => a.match).length;
      $("#search-status").textContent =
        `${plural(matches, "appearance")} found among ${plural(answer.faces_searched, "face")} of the library` +
        ` (strictness: a stranger is taken for this person ${oneIn(answer.fmr)} times).` +
        (answer.appearances.length > matches ? ` ${answer.appearances.length - matches} weaker look-alikes follow.` : "");
      $("#search-results").replaceChildren(...answer.appearances.map((hit, i) => row({ ...hit, rank: i + 1 })));
    } catch (error) {
      $("#search-status").textContent = "";
      say("search-error", error.message);
    }
  }

  dropZone($("#search-drop"), $("#search-file"), (files) => search(files[0]), undefined, "search-error");
  $("#search-below").addEventListener("change", () => current && search(current));
  return { show() {} };
}
