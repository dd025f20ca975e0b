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

/**
 * A video with its moments: each moment is a button that plays the in-page <video> from the
 * moment's start. `extra(moment)` may add controls beside a moment (e.g. "Not this person").
 */
export function videoWithMoments(video, extra = () => null) {
  const player = el("video", {
    src: mediaUrl(video.item),
    controls: true,
    preload: "metadata",
    playsInline: true,
    "aria-label": `video ${baseName(video.source)}`,
  });
  const play = (moment) => {
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
    el("h4", { class: "file", title: video.source, text: baseName(video.source) }),
    player,
    el(
      "ul",
      { class: "moments", "aria-label": `moments in ${baseName(video.source)}` },
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
