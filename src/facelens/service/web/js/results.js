// What a finished job did, in words. Each job kind's result summary (GET /api/jobs) becomes
// sentences, and a list or a short table where one helps; a kind this page does not know
// shows its facts as a compact list. The details that only the result file holds (each photo
// of an identify_photos zip, when each person appears in a video) are read from that file
// when the person opens them, never before (reading a result is a download the audit log
// records).

import { api } from "./api.js";
import { el, plural } from "./dom.js";

/** Each job kind by what it does, for people. */
const KIND_NAMES = {
  library_scan: "Library scan",
  identify_photos: "Identify photos",
  video_identify: "Who is in a video",
  anonymize: "Anonymize",
};

export function kindName(kind) {
  return KIND_NAMES[kind] || kind.replaceAll("_", " ");
}

// --- library scans -------------------------------------------------------------------------

/** A library scan's summary as sentences: what was found, read and grouped, and how many
 * files could not be read (those are listed by `scanFailures`). `what` names what was
 * scanned as the person asked for it ("photos/2024", "the upload a.zip"). */
export function scanSentences(summary, what) {
  const files = summary.files ?? summary.registered ?? 0;
  const processed = summary.processed || 0;
  const failed = summary.failed || 0;
  const duplicates = summary.duplicates || 0;
  const read = Math.max(0, processed - failed);
  const before = Math.max(0, files - processed - duplicates); // scanned by an earlier scan
  const where = what || summary.folder || "the library";
  const out = [];
  if (files === 0) {
    out.push(`Scanned ${where}: no photo or video found.`);
  } else if (processed === 0 && duplicates === 0) {
    out.push(`Scanned ${where}: ${plural(files, "file")} found, all of them scanned before; nothing new to read.`);
  } else {
    out.push(`Scanned ${where}: ${plural(files, "file")} found` + (before ? `, ${before} of them scanned before` : "") + ".");
  }
  if (read > 0) out.push(`Read ${plural(read, "new file")}: ${facesAndGroups(summary)}.`);
  if (duplicates) {
    out.push(`${plural(duplicates, "file")} ${duplicates === 1 ? "was a copy" : "were copies"} of a file already read, so ${duplicates === 1 ? "it was" : "they were"} skipped.`);
  }
  if (summary.low_quality) {
    out.push(`${plural(summary.low_quality, "more face")} ${summary.low_quality === 1 ? "was" : "were"} too small or blurred to keep.`);
  }
  if (failed) out.push(`${plural(failed, "file")} could not be read.`);
  return out;
}

/** "13 faces found, in 7 new groups" (the groups the new faces went to). */
function facesAndGroups(summary) {
  const faces = summary.faces || 0;
  if (faces === 0) return "no face found";
  const grouping = summary.grouping || {};
  const created = grouping.groups_created || 0;
  const grown = grouping.groups_grown || 0;
  const found = `${plural(faces, "face")} found`;
  if (created && grown) return `${found}, in ${plural(created + grown, "group")} (${created} new)`;
  if (created) return `${found}, in ${plural(created, "new group")}`;
  if (grown) return `${found}, added to ${plural(grown, "group")} already there`;
  return found;
}

/** The files a scan could not read: [{file, title, why}], each file shown from the folder
 * asked for ("photos/2024/x.jpg") and the reason without the file's name repeated. */
export function scanFailures(summary) {
  return (summary.failures || []).map((failure) => ({
    file: underFolder(failure.source, summary.folder),
    title: failure.source,
    why: withoutName(failure.error, failure.source),
  }));
}

/** A file's path from the folder the person asked to scan: "photos/x.jpg" for a scan of
 * "photos" (or of "/data/lib" holding it); a file of an upload by its name in the upload
 * ("upload/<job>/00002_a.jpg", the zip's 3rd file, is "a.jpg"); else the path as the server
 * gave it. */
function underFolder(source, folder) {
  const clean = (folder || "").replace(/\/+$/, "");
  if (!clean) return source;
  if (clean.startsWith("upload/") && source.startsWith(`${clean}/`)) {
    return source.slice(clean.length + 1).replace(/^\d{5}_/, "");
  }
  if (clean.startsWith("/") && source.startsWith(`${clean}/`)) return source.slice(clean.length + 1);
  if (source.startsWith(`${clean}/`)) return source;
  const at = source.indexOf(`/${clean}/`);
  return at >= 0 ? source.slice(at + 1) : source;
}

/** "a.jpg: not an image" -> "not an image" (the file is named beside it already). */
function withoutName(message, name) {
  const text = String(message || "");
  for (const prefix of [name, String(name).split("/").pop()]) {
    if (prefix && text.startsWith(`${prefix}: `)) return text.slice(prefix.length + 2);
  }
  return text;
}

/** <li>s of failures: the file, then why. */
export function failureItems(failures) {
  return failures.map((f) =>
    el("li", {}, el("span", { class: "file", title: f.title || f.file, text: f.file }), el("span", { class: "muted", text: ` — ${f.why}` })),
  );
}

// --- the words of each kind ------------------------------------------------------------------

/** "Ada", "Ada and Bob", "Ada, Bob and Cy". */
function listed(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/** Seconds as "0:07" or "1:02:03". */
export function clock(seconds) {
  const total = Math.max(0, Math.round(seconds || 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function sentences(lines) {
  return lines.map((line) => el("p", { text: line }));
}

function libraryScan(job, summary) {
  const what = job.params && job.params.folder ? job.params.folder : `the upload ${job.input}`;
  const nodes = sentences(scanSentences(summary, what));
  const failures = scanFailures(summary);
  if (failures.length) {
    const more = (summary.failed || 0) - failures.length;
    nodes.push(
      el(
        "details",
        { class: "job-failures", open: failures.length <= 10 },
        el("summary", { text: `Files that could not be read (${summary.failed})` }),
        el("ul", { class: "failures" }, ...failureItems(failures)),
        more > 0 ? el("p", { class: "muted", text: `and ${more} more (the result file lists the first ${failures.length})` }) : null,
      ),
    );
  }
  return nodes;
}

function identifyPhotos(job, summary, details) {
  const photos = summary.photos || 0;
  const failed = summary.failed || 0;
  const faces = summary.faces || 0;
  const known = summary.identified || [];
  const read = photos - failed;
  const lines = [
    `Looked for faces in ${plural(read, "photo")}` +
      (failed ? ` (${plural(failed, "more photo")} could not be read)` : "") +
      `: ${faces ? plural(faces, "face") : "no face"} found.`,
  ];
  if (faces) lines.push(known.length ? `Recognized: ${listed(known)}.` : "Nobody enrolled was recognized.");
  const nodes = sentences(lines);
  nodes.push(
    details.section(job, "each-photo", failed ? "Which photos could not be read, and who is in each photo" : "Who is in each photo", (data) => photoTable(data)),
  );
  return nodes;
}

/** identify.json as a table: each photo, and who is in it (or why it could not be read). */
function photoTable(data) {
  const rows = (data.photos || []).slice(0, 200);
  const left = (data.photos || []).length - rows.length;
  const faceWords = (faces) => {
    if (!faces.length) return "no face";
    const names = faces.map((f) => f.identity).filter(Boolean);
    const unknown = faces.length - names.length;
    return [names.length ? listed([...new Set(names)]) : "", unknown ? `${plural(unknown, "unknown face")}` : ""]
      .filter(Boolean)
      .join("; ");
  };
  return [
    el(
      "table",
      { class: "job-table photos" },
      el("thead", {}, el("tr", {}, el("th", { text: "Photo" }), el("th", { text: "Who is in it" }))),
      el(
        "tbody",
        {},
        ...rows.map((row) =>
          el(
            "tr",
            { class: row.error ? "unreadable" : "" },
            el("td", { class: "file", text: row.photo }),
            row.error
              ? el("td", { class: "error", text: `could not be read: ${withoutName(row.error.message, row.photo)}` })
              : el("td", { text: faceWords(row.faces || []) }),
          ),
        ),
      ),
    ),
    left > 0 ? el("p", { class: "muted", text: `and ${plural(left, "more photo")} in the result file` }) : null,
  ];
}

/** ": <the first problem>" when a summary says why a job read only part of its input. */
function because(summary) {
  const problems = summary.problems || [];
  return problems.length ? `: ${problems[0]}` : "";
}

function videoIdentify(job, summary, details) {
  const people = summary.people || [];
  const tracks = summary.tracks || 0;
  const every = Number((job.params && job.params.every) || 1);
  const fps = job.params && job.params.fps;
  const sampled = fps ? ` (${fps} a second)` : every > 1 ? ` (one in ${every})` : "";
  const lines = [
    `Read ${plural(summary.frames_processed || 0, "frame")}${sampled}: ` +
      (tracks ? `${plural(tracks, "face")} followed through the video.` : "no face found."),
  ];
  if (tracks) lines.push(people.length ? `Recognized: ${listed(people)}.` : "Nobody enrolled was recognized.");
  if (summary.complete === false) lines.push(`Only part of the video could be read${because(summary)}.`);
  const nodes = sentences(lines);
  if (tracks) nodes.push(details.section(job, "timeline", "When each face appears", (data) => timelineTable(data)));
  return nodes;
}

/** timeline.json as a table: each person (and the unknown faces), first and last seen, time
 * on screen. */
function timelineTable(data) {
  const people = Object.entries(data.by_person || {}).map(([name, p]) => ({
    name,
    first: p.first_time,
    last: p.last_time,
    on: p.seconds_on_screen,
  }));
  const unknown = (data.tracks || []).filter((t) => !t.identity);
  const rows = people.map((p) =>
    el("tr", {}, el("td", { text: p.name }), el("td", { text: clock(p.first) }), el("td", { text: clock(p.last) }), el("td", { text: clock(p.on) })),
  );
  if (unknown.length) {
    const spans = unknown.flatMap((t) => t.segments || [[t.first_time, t.last_time]]);
    rows.push(
      el(
        "tr",
        { class: "unknown" },
        el("td", { text: `Not recognized (${plural(unknown.length, "face")})` }),
        el("td", { text: clock(Math.min(...unknown.map((t) => t.first_time))) }),
        el("td", { text: clock(Math.max(...unknown.map((t) => t.last_time))) }),
        el("td", { text: clock(onScreen(spans)) }),
      ),
    );
  }
  const problems = data.problems || [];
  return [
    el(
      "table",
      { class: "job-table timeline" },
      el("thead", {}, el("tr", {}, ...["Who", "First seen", "Last seen", "On screen"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows),
    ),
    problems.length ? el("p", { class: "error", text: `Not read to the end: ${problems.join("; ")}` }) : null,
  ];
}

/** Seconds covered by [start, end] spans, overlaps counted once. */
function onScreen(spans) {
  let total = 0;
  let reach = -Infinity;
  for (const [begin, end] of [...spans].sort((a, b) => a[0] - b[0])) {
    total += Math.max(0, end - Math.max(begin, reach));
    reach = Math.max(reach, end);
  }
  return total;
}

const METHOD_WORDS = { blur: "blurred", pixelate: "pixelated", box: "covered with a box", ellipse: "covered with an ellipse" };

function anonymize(job, summary, result) {
  const params = job.params || {};
  const how = METHOD_WORDS[params.method || "blur"] || params.method;
  const video = String(result.media_type || "").startsWith("video/");
  const faces = summary.faces_anonymized || 0;
  const lines = [];
  if (!faces) lines.push(`No face was hidden: the ${video ? "video" : "image"} is unchanged.`);
  else if (video) lines.push(`Faces hidden (${how}) in ${plural(summary.frames_touched || 0, "frame")}.`);
  else lines.push(`Hid ${plural(faces, "face")} (${how}).`);
  if (summary.partial) lines.push(`Only part of the ${video ? "video" : "image"} is in the result${because(summary)}.`);
  if (params.keep) lines.push(`Left visible, as asked: ${params.keep}.`);
  if (params.only) lines.push(`Only these people were to be hidden: ${params.only}.`);
  const check = summary.check;
  if (!check) {
    lines.push("Not checked: the check was turned off.");
  } else if (check.passed) {
    lines.push(
      `Privacy check passed: the recognizer knew none of the hidden faces, and an independent detector found no face left visible (${plural(check.frames_checked || 0, "frame")} checked).`,
    );
  } else {
    const found = [];
    if (check.faces_reidentified) found.push(`${plural(check.faces_reidentified, "hidden face")} recognized`);
    if (check.faces_in_hidden_regions) found.push(`${plural(check.faces_in_hidden_regions, "face")} still found inside hidden areas`);
    if (check.faces_not_hidden) found.push(`${plural(check.faces_not_hidden, "face")} left visible`);
    lines.push(`Privacy check failed: ${found.join(", ") || "see the report"}.`);
  }
  return sentences(lines);
}

/** Any other kind: its facts as one compact line ("photos: 3 · failed: 1"). */
function facts(summary) {
  const line = Object.entries(summary || {})
    .map(([name, value]) => `${name.replaceAll("_", " ")}: ${readable(value)}`)
    .join(" · ");
  return line ? [el("p", { text: line })] : [];
}

function readable(value) {
  if (Array.isArray(value)) return value.map(readable).join(", ") || "none";
  if (value && typeof value === "object") {
    return Object.entries(value).map(([k, v]) => `${k.replaceAll("_", " ")} ${readable(v)}`).join(", ");
  }
  return value === null || value === undefined ? "n/a" : String(value);
}

/** The words of a finished job's result (a list of nodes). `details` makes the sections read
 * from a result file when opened (see `resultDetails`). */
export function resultWords(job, details) {
  const result = job.result || {};
  const { failures: _shown, ...rest } = result.summary || {};
  switch (job.kind) {
    case "library_scan":
      return libraryScan(job, result.summary || {});
    case "identify_photos":
      return identifyPhotos(job, result.summary || {}, details);
    case "video_identify":
      return videoIdentify(job, result.summary || {}, details);
    case "anonymize":
      return anonymize(job, result.summary || {}, result);
    default:
      return facts(rest);
  }
}

/**
 * Sections of a job's result read from one of its JSON files when the person opens them (a
 * <details>, filled in place so the keyboard focus stays on its summary). Each file is read
 * once per job and kept; a failed read is tried again at the next opening.
 */
export function resultDetails() {
  const FILES = { "each-photo": "identify.json", timeline: "timeline.json" };
  const loaded = new Map(); // `${job}/${file}` -> Promise of {data} or {error}

  function load(job, file) {
    const key = `${job.id}/${file}`;
    if (!loaded.has(key)) {
      loaded.set(
        key,
        api("GET", `/api/jobs/${job.id}/result?file=${encodeURIComponent(file)}`).then(
          (data) => ({ data }),
          (error) => {
            loaded.delete(key);
            return { error: error.message };
          },
        ),
      );
    }
    return loaded.get(key);
  }

  return {
    section(job, name, title, render) {
      const body = el("div", { class: "job-details-body", "aria-live": "polite" });
      const details = el("details", { class: `job-details ${name}` }, el("summary", { text: title }), body);
      details.addEventListener("toggle", async () => {
        if (!details.open || details.dataset.read) return;
        body.replaceChildren(el("p", { class: "muted", text: "Reading the result…" }));
        const got = await load(job, FILES[name]);
        if (got.error) {
          body.replaceChildren(el("p", { class: "error", text: got.error }));
          return;
        }
        details.dataset.read = "true";
        body.replaceChildren(...render(got.data).filter(Boolean));
      });
      return details;
    },
    forget(jobId) {
      for (const key of [...loaded.keys()]) if (key.startsWith(`${jobId}/`)) loaded.delete(key);
    },
  };
}
