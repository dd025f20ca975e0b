// Jobs: start a long job on an upload (POST /api/jobs/{kind}), watch its progress
// (GET /api/jobs, polled while any job is unfinished), download its result.

import { api, formData } from "./api.js";
import { $, dropZone, el, say } from "./dom.js";
import { kindName, resultDetails, resultWords } from "./results.js";

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
};

/** Kinds with routes of their own: a library scan reads a folder on the server
 * (POST /api/library/scan) or an upload that may be a zip (POST /api/library/scan/upload);
 * the jobs API takes one photo or video for it. */
const OWN_ROUTES = {
  library_scan: {
    folder: "/api/library/scan",
    upload: "/api/library/scan/upload",
    accept: "image/*,video/*,.zip,application/zip",
    words:
      "Scan a folder on the server, or an upload (a photo, a video or a zip of them), into " +
      "the library, then group the new faces (input: a folder, or a file)",
  },
};

/** The label of a folder field: which folder(s) it is relative to. */
function folderLabel(roots) {
  if (!roots) return "Folder inside the server's library folder";
  if (roots.length === 0) return "Folder (this server may not read any folder: upload instead)";
  if (roots.length === 1) return `Folder inside ${roots[0]} (relative to it, or its full path)`;
  return `Folder inside one of ${roots.join(", ")} (its full path, or relative to one)`;
}

export function setupJobs() {
  let kinds = [];
  let roots = null; // the library folders this server may read, as it was given them
  let file = null;
  let timer = null;
  const details = resultDetails();
  /** Each job's row as last drawn, and what it was drawn from: a row whose job has not
   * changed is kept as it is (the keyboard focus in it, a <details> opened, stay). */
  const rows = new Map();

  function kind() {
    return kinds.find((k) => k.kind === $("#job-kind").value);
  }

  /** The folder field of a kind that can read a server folder (OWN_ROUTES). */
  function folderField() {
    const input = el("input", { id: "job-folder", type: "text", maxLength: 4096, placeholder: "2024/summer" });
    input.addEventListener("input", updateStart);
    return el("div", {}, el("label", { htmlFor: "job-folder", text: folderLabel(roots) }), input);
  }

  function folderGiven() {
    const input = $("#job-folder");
    return input ? input.value.trim() : "";
  }

  function renderKind() {
    const current = kind();
    const upload = current && (UPLOADS[current.upload] || { label: current.upload }).label;
    const own = current && OWN_ROUTES[current.kind];
    $("#job-kind-description").textContent = !current
      ? "This server offers no background job."
      : own
        ? own.words
        : `${current.description} (input: ${upload})`;
    $("#job-file").accept = own ? own.accept : current && UPLOADS[current.upload] ? UPLOADS[current.upload].accept : "";
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
    if (own) $("#job-params").prepend(folderField());
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
    $("#job-start").disabled = !(kind() && (file || folderGiven()));
    $("#job-file-name").textContent = file ? `${file.name} (${(file.size / 1e6).toFixed(1)} MB)` : "";
  }

  async function startJob(event) {
    event.preventDefault();
    say("job-error", "");
    $("#job-start").disabled = true;
    try {
      const current = kind();
      const folder = folderGiven();
      if (folder && file) {
        throw new Error("Scan a folder or an upload, not both: clear the folder to send the file.");
      }
      const own = OWN_ROUTES[current.kind];
      if (folder) {
        await api("POST", own.folder, { json: { folder } });
        $("#job-folder").value = "";
      } else if (own) {
        await api("POST", own.upload, { form: formData([["file", file]]) });
        file = null;
      } else {
        const form = formData([["file", file], ["params", JSON.stringify(params())]]);
        await api("POST", `/api/jobs/${encodeURIComponent(current.kind)}`, { form });
        file = null;
      }
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
      result = el(
        "div",
        { class: "job-result" },
        warning,
        el("div", { class: "summary" }, ...resultWords(job, details)),
        el(
          "div",
          { class: "job-files" },
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
        ),
      );
    } else if (job.state === "failed" && job.error) {
      result = el("span", { class: "error", text: job.error.message || job.error.code });
    }
    const action = FINISHED.includes(job.state)
      ? el("button", { type: "button", class: "small secondary", text: "Delete", "aria-label": `Delete the ${kindName(job.kind).toLowerCase()} job of ${job.input}`, onclick: () => remove(job.id) })
      : el("button", { type: "button", class: "small danger", text: "Cancel", "aria-label": `Cancel the ${kindName(job.kind).toLowerCase()} job of ${job.input}`, onclick: () => cancel(job.id) });
    return el(
      "tr",
      { "data-job": job.id, "data-state": job.state, "data-kind": job.kind },
      el("td", { class: "kind", text: kindName(job.kind) }),
      el("td", { class: "input", text: job.input }),
      el("td", { class: `state state-${job.state}`, tabindex: "-1", text: job.state.replace("_", " ") }),
      el(
        "td",
        {},
        el("progress", { max: 1, value: job.progress, "aria-label": `Progress of ${job.input}` }),
        el("span", { class: "muted message", text: ` ${Math.round(job.progress * 100)}% ${job.message || ""}` }),
      ),
      el("td", { class: "result" }, result),
      el("td", {}, action),
    );
  }

  /** The rows of `jobs`, newest first. A job unchanged since it was drawn keeps its row (the
   * keyboard focus in it, a <details> opened, stay); a running job's row only has its
   * progress moved. */
  function draw(jobs) {
    const list = $("#jobs-list");
    let refocus = null;
    const wanted = jobs.map((job) => {
      const drawn = JSON.stringify([job.state, job.result, job.error, job.kind, job.input]);
      const known = rows.get(job.id);
      if (known && known.drawn === drawn) {
        known.node.querySelector("progress").value = job.progress;
        known.node.querySelector(".message").textContent = ` ${Math.round(job.progress * 100)}% ${job.message || ""}`;
        return known.node;
      }
      const node = row(job);
      rows.set(job.id, { drawn, node });
      if (known && known.node.contains(document.activeElement)) {
        // the job the keyboard was on changed (it finished): the focus goes on to its result,
        // or to its new state ("cancelled", "failed"), never to the Delete button that took
        // Cancel's place, where a second Enter would delete the job
        refocus = node.querySelector("td.result a, td.result summary") || node.querySelector("td.state");
      }
      return node;
    });
    const ids = new Set(jobs.map((job) => job.id));
    for (const id of [...rows.keys()]) {
      if (!ids.has(id)) {
        rows.delete(id);
        details.forget(id);
      }
    }
    const keep = new Set(wanted);
    for (const node of [...list.children]) if (!keep.has(node)) node.remove();
    wanted.forEach((node, index) => {
      const here = list.children[index];
      if (here !== node) list.insertBefore(node, here || null);
    });
    if (refocus) refocus.focus();
  }

  /** Stop a queued or running job (POST /api/jobs/{id}/cancel): it stays listed as
   * cancelled until deleted. */
  async function cancel(id) {
    try {
      await api("POST", `/api/jobs/${id}/cancel`);
    } catch (error) {
      say("job-error", error.message);
    }
    await refresh();
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
    draw(jobs);
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
    if (kinds.some((k) => OWN_ROUTES[k.kind])) {
      try {
        roots = (await api("GET", "/api/library")).root_folders || null;
      } catch {
        roots = null; // the label then says "the server's library folder"
      }
    }
    const previous = $("#job-kind").value;
    $("#job-kind").replaceChildren(...kinds.map((k) => el("option", { value: k.kind, text: kindName(k.kind) })));
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
