// Jobs: start a long job on an upload (POST /api/jobs/{kind}), watch its progress
// (GET /api/jobs, polled while any job is unfinished), download its result.

import { api, formData } from "./api.js";
import { $, dropZone, el, say } from "./dom.js";

const POLL_MS = 1000;
const FINISHED = ["done", "failed", "failed_check", "cancelled"];
/** States whose result was written and can be downloaded ("failed_check": written, but it
 * failed its own privacy check, so a person must review it). */
const WITH_RESULT = ["done", "failed_check"];
const UPLOADS = {
  video: { accept: "video/*,.mp4,.avi,.mkv,.webm,.mov", label: "a video" },
  zip: { accept: ".zip,application/zip", label: "a zip of photos" },
  media: { accept: "image/*,video/*", label: "an image or a video" },
};

/** What each job parameter is, in words (its API name stays in the form's data). */
const PARAM_LABELS = {
  fmr: "False-match rate (e.g. 0.0001)",
  threshold: "Or a score threshold (-1 to 1)",
  top_k: "Candidates listed per face",
  every: "Read one frame in",
  fps: "Or frames per second to read",
  draw: "Also make an annotated video",
  method: "How to hide faces",
  keep: "Leave these enrolled people visible (names, comma-separated)",
  only: "Or hide only these enrolled people (names, comma-separated)",
  check: "Check the result with an independent detector and recognizer",
  folder: "Folder under the server's library folder",
};

/** A job's result summary ({photos: 3, identified: [...]}) as one line for people. */
function summary(facts) {
  if (!facts || typeof facts !== "object") return "";
  return Object.entries(facts)
    .map(([name, value]) => `${name.replaceAll("_", " ")}: ${readable(value)}`)
    .join(" · ");
}

function readable(value) {
  if (Array.isArray(value)) return value.map(readable).join(", ") || "none";
  if (value && typeof value === "object") {
    return Object.entries(value).map(([k, v]) => `${k.replaceAll("_", " ")} ${readable(v)}`).join(", ");
  }
  return value === null || value === undefined ? "n/a" : String(value);
}

export function setupJobs() {
  let kinds = [];
  let file = null;
  let timer = null;

  function kind() {
    return kinds.find((k) => k.kind === $("#job-kind").value);
  }

  function renderKind() {
    const current = kind();
    $("#job-kind-description").textContent = current
      ? `${current.description} (input: ${(UPLOADS[current.upload] || { label: current.upload }).label})`
      : "This server offers no background job.";
    $("#job-file").accept = current && UPLOADS[current.upload] ? UPLOADS[current.upload].accept : "";
    $("#job-params").replaceChildren(
      ...Object.entries(current ? current.params : {}).map(([name, type]) => {
        const id = `job-param-${name}`;
        const choices = (current.choices || {})[name];
        const input = choices
          ? el(
              "select",
              { id, "data-param": name, "data-type": type },
              el("option", { value: "", text: `default (${choices[0]})` }),
              ...choices.map((choice) => el("option", { value: choice, text: choice })),
            )
          : type === "bool"
            ? el(
                "select",
                { id, "data-param": name, "data-type": type },
                el("option", { value: "", text: "default" }),
                el("option", { value: "true", text: "yes" }),
                el("option", { value: "false", text: "no" }),
              )
            : el("input", {
                id,
                type: type === "str" ? "text" : "number",
                step: type === "float" ? "any" : "1",
                placeholder: "default",
                "data-param": name,
                "data-type": type,
              });
        const label = PARAM_LABELS[name] || name.replaceAll("_", " ");
        return el("div", {}, el("label", { htmlFor: id, text: label }), input);
      }),
    );
    updateStart();
  }

  function params() {
    const out = {};
    for (const input of document.querySelectorAll("#job-params [data-param]")) {
      const type = input.dataset.type;
      if (type === "bool") {
        if (input.value) out[input.dataset.param] = input.value === "true";
      } else if (input.value.trim() !== "") {
        out[input.dataset.param] = type === "str" ? input.value : Number(input.value);
      }
    }
    return out;
  }

  function updateStart() {
    $("#job-start").disabled = !(kind() && file);
    $("#job-file-name").textContent = file ? `${file.name} (${(file.size / 1e6).toFixed(1)} MB)` : "";
  }

  async function startJob(event) {
    event.preventDefault();
    say("job-error", "");
    $("#job-start").disabled = true;
    try {
      const current = kind();
      const form = formData([["file", file], ["params", JSON.stringify(params())]]);
      await api("POST", `/api/jobs/${encodeURIComponent(current.kind)}`, { form });
      file = null;
      await refresh();
    } catch (error) {
      say("job-error", error.message);
    }
    updateStart();
  }

  function row(job) {
    const done = WITH_RESULT.includes(job.state);
    let result = "";
    if (done && job.result) {
      const others = (job.result.files || []).filter((name) => name !== job.result.file);
      const failures = (job.result.summary && job.result.summary.failures) || [];
      const warning =
        job.state === "failed_check"
          ? el("div", {
              class: "error check-failed",
              role: "alert",
              text: `Privacy check failed; review the report before use: ${failures.map((f) => f.what).join("; ")}`,
            })
          : null;
      const { failures: _shown, ...facts } = job.result.summary || {};
      result = el(
        "span",
        {},
        warning,
        el("a", {
          href: `/api/jobs/${job.id}/result`,
          download: "",
          class: "download",
          text: `Download ${job.result.file || "result"}`,
        }),
        ...others.map((name) =>
          el("a", {
            href: `/api/jobs/${job.id}/result?file=${encodeURIComponent(name)}`,
            download: "",
            class: "download-other",
            "data-file": name,
            text: name,
          }),
        ),
        el("div", { class: "muted summary", text: summary(facts) }),
      );
    } else if (job.state === "failed" && job.error) {
      result = el("span", { class: "error", text: job.error.message || job.error.code });
    }
    const action = FINISHED.includes(job.state)
      ? el("button", { type: "button", class: "small secondary", text: "Delete", onclick: () => remove(job.id) })
      : el("button", { type: "button", class: "small danger", text: "Cancel", onclick: () => remove(job.id) });
    return el(
      "tr",
      { "data-job": job.id, "data-state": job.state },
      el("td", { text: job.kind }),
      el("td", { text: job.input }),
      el("td", { class: `state state-${job.state}`, text: job.state.replace("_", " ") }),
      el(
        "td",
        {},
        el("progress", { max: 1, value: job.progress }),
        el("span", { class: "muted message", text: ` ${Math.round(job.progress * 100)}% ${job.message || ""}` }),
      ),
      el("td", {}, result),
      el("td", {}, action),
    );
  }

  async function remove(id) {
    try {
      await api("DELETE", `/api/jobs/${id}`);
    } catch (error) {
      say("job-error", error.message);
    }
    await refresh();
  }

  async function refresh() {
    clearTimeout(timer);
    timer = null;
    let jobs;
    try {
      jobs = await api("GET", "/api/jobs");
    } catch (error) {
      say("job-error", error.message);
      return;
    }
    $("#jobs-list").replaceChildren(...jobs.map(row));
    $("#jobs-table").hidden = jobs.length === 0;
    $("#jobs-empty").hidden = jobs.length > 0;
    const watching = !$("#view-jobs").hidden;
    if (watching && jobs.some((job) => !FINISHED.includes(job.state))) {
      timer = setTimeout(refresh, POLL_MS);
    }
  }

  async function show() {
    try {
      kinds = await api("GET", "/api/jobs/kinds");
    } catch (error) {
      say("job-error", error.message);
      kinds = [];
    }
    const previous = $("#job-kind").value;
    $("#job-kind").replaceChildren(...kinds.map((k) => el("option", { value: k.kind, text: k.kind.replaceAll("_", " ") })));
    if (kinds.some((k) => k.kind === previous)) $("#job-kind").value = previous;
    renderKind();
    await refresh();
  }

  dropZone(
    $("#job-drop"),
    $("#job-file"),
    (files) => {
      file = files[0];
      updateStart();
    },
    () => true,
  );
  $("#job-kind").addEventListener("change", renderKind);
  $("#job-form").addEventListener("submit", startJob);
  return {
    show,
    stop() {
      clearTimeout(timer);
      timer = null;
    },
  };
}
