// Photos and videos of the library in the page: a photo with a face's box marked, and a
// video with its moments (time ranges where a face appears) that play from their start.

import { mediaUrl } from "./api.js";
import { el, photoWithBoxes, plural } from "./dom.js";

/** Seconds between two sightings of a face in a video beyond which a new moment starts. */
const MOMENT_GAP_S = 2.5;

/** Seconds as "m:ss" (or "h:mm:ss"). */
export function clock(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** The last part of a path, for captions (the whole path stays in the title). */
export function baseName(source) {
  return source.split("/").pop() || source;
}

/**
 * A library photo with `faces` ({box, label, kind}) marked: the photo comes from
 * GET /api/library/items/{item}/media; boxes are laid over it once its size is known.
 * When it cannot be shown (the file is gone), `fallback` (e.g. the face crop) is shown.
 */
export function libraryPhoto(item, alt, faces, fallback) {
  const holder = el("div", { class: "photo" });
  const image = el("img", { src: mediaUrl(item), alt, loading: "lazy", decoding: "async" });
  image.addEventListener("load", () => {
    const frame = photoWithBoxes(image, image.naturalWidth, image.naturalHeight, faces);
    holder.replaceWith(frame);
  });
  image.addEventListener("error", () => {
    holder.replaceChildren(
      ...(fallback ? [fallback] : []),
      el("p", { class: "muted", text: "The photo is no longer on the server." }),
    );
  });
  holder.append(image);
  return holder;
}

/**
 * Video appearances ({item, source, time, face, ...}) as moments, one entry per video:
 * [{item, source, moments: [{start, end, faces: [face ids]}]}], videos by name.
 */
export function videoMoments(appearances) {
  const videos = new Map();
  for (const found of appearances) {
    if (found.time === null || found.time === undefined) continue;
    if (!videos.has(found.item)) videos.set(found.item, { item: found.item, source: found.source, sightings: [] });
    videos.get(found.item).sightings.push(found);
  }
  return [...videos.values()]
    .sort((a, b) => a.source.localeCompare(b.source))
    .map(({ item, source, sightings }) => {
      sightings.sort((a, b) => a.time - b.time);
      const moments = [];
      for (const seen of sightings) {
        const last = moments[moments.length - 1];
        if (last && seen.time - last.end <= MOMENT_GAP_S) {
          last.end = seen.time;
          last.faces.push(seen.face);
        } else {
          moments.push({ start: seen.time, end: seen.time, faces: [seen.face] });
        }
      }
      return { item, source, moments };
    });
}

/** "0:03 – 0:07" (or "0:03" for a single sighting). */
export function momentLabel(moment) {
  const start = clock(moment.start);
  const end = clock(moment.end);
  return start === end ? start : `${start} – ${end}`;
}

/** The stored crop of a library face (GET /api/library/faces/{id}/crop). */
function faceCropUrl(face) {
  return `/api/library/faces/${face}/crop`;
}

/**
 * A video with its moments: each moment is a button that plays the in-page <video> from the
 * moment's start. `extra(moment)` may add controls beside a moment (e.g. "Not this person").
 *
 * A video this browser cannot decode (Chromium has no MPEG-4 Part 2 decoder: it plays the
 * sound and draws a black box, videoWidth 0; or it gives up, an `error`) is said so: the
 * face at the moment (its stored crop) stands in for the picture, with a link to download
 * the file. The picture is then hidden; a video with sound keeps its controls to be heard.
 */
export function videoWithMoments(video, extra = () => null) {
  const name = baseName(video.source);
  const player = el("video", {
    src: mediaUrl(video.item),
    controls: true,
    preload: "metadata",
    playsInline: true,
    "aria-label": `video ${name}`,
  });
  const still = el("img", { class: "crop", alt: "" });
  const stillCaption = el("figcaption", { class: "muted" });
  const why = el("p", { class: "why" });
  const fallback = el(
    "div",
    { class: "video-fallback", hidden: true },
    why,
    el("figure", { class: "still" }, still, stillCaption),
    el("a", { class: "button secondary small", href: mediaUrl(video.item), download: name, text: `Download ${name}` }),
  );
  let chosen = video.moments[0];
  const showStill = (moment) => {
    if (!moment) return;
    still.src = faceCropUrl(moment.faces[0]);
    still.alt = `the face at ${clock(moment.start)} in ${name}`;
    stillCaption.textContent = `the face at ${clock(moment.start)}`;
  };
  const cannotPlay = (message, { sound }) => {
    if (!fallback.hidden) return;
    why.textContent = message;
    showStill(chosen);
    fallback.hidden = false;
    player.classList.toggle("sound-only", sound); // its controls play the sound; no black box
    player.hidden = !sound;
  };
  player.addEventListener("loadedmetadata", () => {
    if (player.videoWidth === 0) {
      cannotPlay("This browser cannot play this video's format (only its sound): here is the face at that moment instead. Download the video to watch it in another player.", { sound: true });
    }
  });
  player.addEventListener("error", async () => {
    let gone = false;
    try {
      gone = !(await fetch(player.src, { headers: { Range: "bytes=0-0" }, credentials: "same-origin" })).ok;
    } catch {
      gone = false;
    }
    cannotPlay(
      gone
        ? "The video is no longer on the server: here is the face at that moment."
        : "This browser cannot play this video's format: here is the face at that moment instead. Download the video to watch it in another player.",
      { sound: false },
    );
    if (gone) fallback.querySelector("a").hidden = true;
  });
  const play = (moment) => {
    chosen = moment;
    if (!fallback.hidden) showStill(moment);
    if (player.hidden) return; // nothing to play: the face at the moment is shown instead
    const seek = () => {
      player.currentTime = moment.start;
      player.play().catch(() => {}); // a browser may refuse to play; the moment is shown anyway
    };
    if (player.readyState >= 1) seek();
    else player.addEventListener("loadedmetadata", seek, { once: true });
  };
  return el(
    "article",
    { class: "video", "data-item": video.item },
    el("h4", { class: "file", title: video.source, text: name }),
    player,
    fallback,
    el(
      "ul",
      { class: "moments", "aria-label": `moments in ${name}` },
      ...video.moments.map((moment) =>
        el(
          "li",
          { "data-start": moment.start },
          el("button", {
            type: "button",
            class: "moment secondary small",
            "data-start": moment.start,
            text: `▶ ${momentLabel(moment)}`,
            title: `play from ${clock(moment.start)} (${plural(moment.faces.length, "sighting")})`,
            onclick: () => play(moment),
          }),
          extra(moment),
        ),
      ),
    ),
  );
}
