// People, the home page (#/people): the known people, then the groups of unknown faces of the
// library (largest first, a page at a time) to name, merge, hide or correct, and the scan of
// a folder or an upload into the library. #/people/NAME is one person's page (person.js).

import { api, apiPage, ApiError, cropUrl } from "./api.js";
import { $, cancelOnEscape, dropZone, el, onEscape, plural, say, undoneMessage } from "./dom.js";
import { setupPerson } from "./person.js";
import { failureItems, scanFailures, scanSentences } from "./results.js";

const PAGE = 24; // groups fetched per page: 2,000 groups open as fast as 24
const POLL_MS = 1000;
const FINISHED = ["done", "failed", "cancelled"];

/** Every gallery person's name in the shared <datalist id="people-names"> (and enroll's). */
export async function loadNames() {
  const people = await api("GET", "/api/people");
  const options = () => people.map((p) => el("option", { value: p.name }));
  $("#people-names").replaceChildren(...options());
  $("#enroll-names").replaceChildren(...options());
  return people;
}

export function setupPeople(session) {
  let people = [];
  let groups = [];
  let total = 0;
  const selected = new Set();
  let scanTimer = null; // null: no scan followed; else the poll's timer (0 before the first)
  const person = setupPerson(session, { onChange: () => loadPeople() });

  // --- known people ----------------------------------------------------------------------

  function avatar(p) {
    if (session.can("enroll") && p.photos && p.photos.length) {
      return el("img", { class: "avatar", src: cropUrl(p.name, p.photos[0].id), alt: "" });
    }
    const initials = p.name.split(/\s+/).map((w) => w[0] || "").join("").slice(0, 2).toUpperCase();
    return el("span", { class: "avatar initials", "aria-hidden": "true", text: initials });
  }

  function renderPeople() {
    const filter = $("#people-filter").value.trim().toLowerCase();
    $("#people-list").replaceChildren(
      ...people
        .filter((p) => p.name.toLowerCase().includes(filter))
        .map((p) =>
          el(
            "li",
            {},
            el(
              "button",
              { type: "button", class: "person-card", "data-name": p.name, onclick: () => open(p.name) },
              avatar(p),
              el("span", { class: "person-name", text: p.name }),
              el("span", { class: "muted", text: plural(p.templates, "face") }), // from photos or video frames
            ),
          ),
        ),
    );
    $("#people-count").textContent = `(${people.length})`;
    $("#people-empty").hidden = people.length > 0;
  }

  function open(name) {
    if (name.includes("/")) {
      // Only an older version could store it: a URL path segment cannot hold "/" (issue 13).
      say("flash", `"${name}" holds a "/", which names no longer may: rename or erase it with ` +
        "facelens people rename / facelens people remove on the server.");
      return;
    }
    location.hash = `#/people/${encodeURIComponent(name)}`;
  }

  async function loadPeople() {
    try {
      people = await loadNames();
    } catch (error) {
      say("flash", error.message);
      return;
    }
    renderPeople();
    if (session.can("enroll")) {
      // one face each, fetched after the list shows (the list never waits for them)
      const detailed = await Promise.all(
        people.slice(0, 60).map((p) => api("GET", `/api/people/${encodeURIComponent(p.name)}`).catch(() => p)),
      );
      const byName = new Map(detailed.map((p) => [p.name, p]));
      people = people.map((p) => byName.get(p.name) || p);
      renderPeople();
    }
  }

  // --- groups of unknown faces -----------------------------------------------------------

  function groupsPath(offset, limit) {
    const hidden = $("#groups-hidden").checked ? "&hidden=true" : "";
    return `/api/library/groups?offset=${offset}&limit=${limit}${hidden}`;
  }

  /** The first `count` groups again (after a change), or the first page. */
  async function loadGroups(count = PAGE) {
    say("groups-error", "");
    try {
      const page = await apiPage(groupsPath(0, Math.min(500, Math.max(PAGE, count))));
      groups = page.items;
      total = page.total;
    } catch (error) {
      say("groups-error", error.message);
      return;
    }
    for (const id of [...selected]) if (!groups.some((g) => g.id === id)) selected.delete(id);
    renderGroups();
  }

  async function more() {
    let added;
    try {
      const page = await apiPage(groupsPath(groups.length, PAGE));
      const known = new Set(groups.map((g) => g.id));
      added = page.items.filter((g) => !known.has(g.id));
      groups = groups.concat(added);
      total = page.total;
    } catch (error) {
      say("groups-error", error.message);
      return;
    }
    const cards = added.map(groupCard); // the groups shown stay as they are (open panels too)
    $("#groups-list").append(...cards);
    renderGroups(false);
    const next = cards.length && cards[0].querySelector(".group-select, .group-open");
    if (next) next.focus(); // keyboard users carry on where the new groups start
  }

  function renderGroups(all = true) {
    const hidden = $("#groups-hidden").checked;
    $("#groups-count").textContent = `(${plural(total, hidden ? "hidden group" : "group")})`;
    if (all) $("#groups-list").replaceChildren(...groups.map(groupCard));
    $("#groups-empty").hidden = groups.length > 0;
    $("#groups-more").hidden = groups.length >= total;
    $("#groups-more").textContent = `Show more groups (${(total - groups.length).toLocaleString("en")} more)`;
    updateTools();
  }

  function updateTools() {
    const canChange = session.can("enroll");
    $("#groups-tools").hidden = false;
    $("#groups-merge").hidden = !canChange;
    $("#library-undo").hidden = !canChange;
    $("#groups-merge").disabled = selected.size < 2;
    $("#groups-merge").textContent = selected.size >= 2 ? `Merge ${selected.size} selected groups` : "Merge selected";
  }

  function groupCard(group) {
    const canChange = session.can("enroll");
    const title = `Group ${group.id}: ${plural(group.faces, "face")}`;
    const input = el("input", {
      type: "text",
      class: "group-name-input",
      list: "people-names",
      maxlength: 200,
      placeholder: "Who is this?",
      "aria-label": `Name of the person in group ${group.id}`,
      required: true,
    });
    // Like a face met in Identify: "This is NAME" joins someone known, "New person: NAME" makes one.
    const submit = el("button", { type: "submit", text: "Name" });
    input.addEventListener("input", () => {
      const name = input.value.trim();
      submit.textContent = !name ? "Name" : people.some((p) => p.name === name) ? `This is ${name}` : `New person: ${name}`;
    });
    cancelOnEscape(input); // Escape empties the name typed
    const problem = el("p", { class: "error group-error", role: "alert", hidden: true });
    const faces = el("div", { class: "group-faces", hidden: true });
    const toggle = el("button", {
      type: "button",
      class: "secondary small group-open",
      "aria-expanded": "false",
      text: "Check the faces",
      onclick: () => toggleFaces(group, faces, toggle),
    });
    // Escape in the open faces (or on its button) closes them; the focus goes back to the button
    onEscape(() => !faces.hidden && (toggleFaces(group, faces, toggle), toggle), faces, toggle);
    return el(
      "li",
      { class: "group", "data-group": group.id },
      el(
        "div",
        { class: "group-head" },
        canChange
          ? el(
              "label",
              { class: "check" },
              el("input", {
                type: "checkbox",
                class: "group-select",
                checked: selected.has(group.id),
                "aria-label": `Select group ${group.id} to merge`,
                onchange: (event) => {
                  if (event.target.checked) selected.add(group.id);
                  else selected.delete(group.id);
                  updateTools();
                },
              }),
              el("span", { text: title }),
            )
          : el("span", { text: title }),
      ),
      el(
        "div",
        { class: "samples" },
        ...group.samples.map((s) => el("img", { class: "crop", src: s.crop_url, alt: `a face of group ${group.id}`, loading: "lazy" })),
      ),
      canChange
        ? el(
            "form",
            { class: "row group-name", onsubmit: (event) => nameGroup(event, group, input, problem) },
            input,
            submit,
          )
        : null,
      problem,
      el(
        "div",
        { class: "row" },
        toggle,
        canChange
          ? el("button", {
              type: "button",
              class: "secondary small group-hide",
              text: group.hidden ? "Show again" : "Hide (strangers)",
              onclick: () => hide(group),
            })
          : null,
      ),
      faces,
    );
  }

  async function toggleFaces(group, box, button) {
    const opening = box.hidden;
    box.hidden = !opening;
    button.setAttribute("aria-expanded", String(opening));
    button.textContent = opening ? "Close the faces" : "Check the faces";
    if (!opening) return;
    box.replaceChildren(el("p", { class: "muted", text: "loading…" }));
    let detail;
    try {
      detail = await api("GET", `/api/library/groups/${group.id}`);
    } catch (error) {
      box.replaceChildren(el("p", { class: "error", text: error.message }));
      return;
    }
    const canChange = session.can("enroll");
    const others = groups.filter((g) => g.id !== group.id);
    const chosen = new Set(); // faces ticked for "move to a person" or "new group"
    const tools = canChange ? faceTools(group, detail, chosen) : null;
    box.replaceChildren(
      el("p", { class: "hint", text: canChange ? "A face that is not this person: move it to its group or to a person, or say it is not them. Tick faces to move several, or to make them a group of their own." : "" }),
      el(
        "ul",
        { class: "face-list" },
        ...detail.faces.map((face) =>
          el(
            "li",
            { "data-face": face.face },
            canChange
              ? el("input", {
                  type: "checkbox",
                  class: "face-select",
                  "aria-label": `Select face ${face.face}`,
                  onchange: (event) => {
                    if (event.target.checked) chosen.add(face.face);
                    else chosen.delete(face.face);
                    tools.update();
                  },
                })
              : null,
            el("img", { class: "crop", src: face.crop_url, alt: `face ${face.face}`, loading: "lazy" }),
            el(
              "div",
              { class: "face-info" },
              el("div", { class: "file", title: face.source, text: face.source.split("/").pop() }),
              el("div", { class: "muted", text: face.time === null ? "photo" : `video at ${face.time.toFixed(1)} s` }),
              canChange
                ? el(
                    "div",
                    { class: "row" },
                    el("button", {
                      type: "button",
                      class: "small danger face-reject",
                      text: "Not this person",
                      onclick: () => correct("/api/library/faces/reject", { faces: [face.face] }, "The face left the group."),
                    }),
                    others.length
                      ? el(
                          "select",
                          {
                            class: "face-move",
                            "aria-label": `Move face ${face.face} to another group`,
                            onchange: (event) => {
                              const target = Number(event.target.value);
                              if (target) correct("/api/library/faces/move", { faces: [face.face], group: target }, `The face moved to group ${target}.`);
                            },
                          },
                          el("option", { value: "", text: "Move to group…" }),
                          ...others.map((g) => el("option", { value: g.id, text: `group ${g.id} (${plural(g.faces, "face")})` })),
                        )
                      : null,
                  )
                : null,
            ),
          ),
        ),
      ),
      tools ? tools.node : null,
    );
  }

  /** What can be done with the ticked faces of a group: they are a person (known or new),
   * or a group of their own (a split: at least one face must stay). */
  function faceTools(group, detail, chosen) {
    const count = el("span", { class: "muted face-count", role: "status", text: "No face selected." });
    const input = el("input", {
      type: "text",
      class: "face-person-input",
      list: "people-names",
      maxlength: 200,
      placeholder: "Who are they?",
      "aria-label": `Person the selected faces of group ${group.id} are`,
      required: true,
    });
    const move = el("button", { type: "submit", class: "small face-to-person", text: "Move to person", disabled: true });
    const split = el("button", {
      type: "button",
      class: "small secondary face-split",
      text: "New group from selected",
      disabled: true,
      onclick: () => {
        const faces = [...chosen];
        correct(`/api/library/groups/${group.id}/split`, { faces }, (a) => `${plural(faces.length, "face")} made group ${a.new_group}. Undo joins them again.`);
      },
    });
    const form = el(
      "form",
      {
        class: "row face-person",
        onsubmit: (event) => {
          event.preventDefault();
          const name = input.value.trim();
          if (!name || !chosen.size) {
            count.textContent = !chosen.size ? "Tick the faces to move first." : "Type who they are first (spaces alone are no name).";
            input.focus();
            return;
          }
          const faces = [...chosen];
          correct("/api/library/faces/name", { faces, name }, `${plural(faces.length, "face")} moved to ${name}.`);
        },
      },
      input,
      move,
    );
    const node = el("div", { class: "face-tools" }, count, form, split);
    return {
      node,
      update() {
        const n = chosen.size;
        const all = n >= detail.faces.length;
        count.textContent = !n ? "No face selected." : all
          ? `All ${plural(n, "face")} selected (a new group must leave at least one here):`
          : `${plural(n, "face")} selected:`;
        move.disabled = n === 0;
        split.disabled = n === 0 || all;
      },
    };
  }

  /** Show an error about the groups where it is seen: in `problem` (beside the control used) while it
   * is on the page, else above the groups, scrolled to and focused. */
  function tell(message, problem = null) {
    if (problem && problem.isConnected) {
      problem.textContent = message;
      problem.hidden = false;
      problem.scrollIntoView({ block: "nearest" });
      return;
    }
    say("groups-error", message);
    $("#groups-error").scrollIntoView({ block: "nearest" });
    $("#groups-error").focus();
  }

  async function correct(path, body, message, problem = null) {
    say("groups-error", "");
    say("groups-status", "");
    if (problem) problem.hidden = true;
    try {
      const answer = await api("POST", path, body === undefined ? {} : { json: body });
      say("groups-status", typeof message === "function" ? message(answer) : message);
    } catch (error) {
      const message = error instanceof ApiError ? error.message : String(error);
      // Another page may have changed the groups meanwhile (409, 404): show them as they are now.
      if (error instanceof ApiError && [404, 409].includes(error.status)) await Promise.all([loadGroups(groups.length), loadPeople()]);
      tell(message, problem);
      return false;
    }
    await Promise.all([loadGroups(groups.length), loadPeople()]);
    return true;
  }

  async function nameGroup(event, group, input, problem) {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) {
      tell("Type the person's name first (spaces alone are no name).", problem);
      input.focus();
      return;
    }
    const known = people.some((p) => p.name === name);
    const at = groups.findIndex((g) => g.id === group.id);
    const named = await correct(`/api/library/groups/${group.id}/name`, { name }, known
      ? `The group joined ${name}.`
      : `The group is now ${name}.`, problem);
    if (named) {
      // the card is gone: the keyboard goes on with the group now in its place (or the message)
      const next = $("#groups-list").children[Math.max(0, at)];
      const field = next && next.querySelector(".group-name-input");
      if (field) field.focus();
      else $("#groups-status").focus();
    } else if (problem.isConnected) {
      input.focus();
    }
  }

  async function merge() {
    const ids = [...selected];
    if (ids.length < 2) return;
    const ok = await correct("/api/library/groups/merge", { groups: ids }, (a) => `${plural(ids.length, "group")} merged into group ${a.group}.`);
    if (ok) {
      selected.clear();
      renderGroups(); // the merged group is shown unselected
    }
  }

  function hide(group) {
    return correct(`/api/library/groups/${group.id}/hide`, { hidden: !group.hidden }, group.hidden
      ? `Group ${group.id} is shown again.`
      : `Group ${group.id} is hidden. Undo brings it back.`);
  }

  function undo() {
    return correct("/api/library/undo", undefined, undoneMessage);
  }

  // --- scans -------------------------------------------------------------------------------

  let roots = []; // the library folders this server may read, as it was given them (--library-root)

  /** Say which folder(s) a scan reads, and make the folder field relative to it. */
  async function describeRoots() {
    let stats;
    try {
      stats = await api("GET", "/api/library");
    } catch (error) {
      $("#scan-roots").textContent = error.message;
      return;
    }
    roots = stats.root_folders || [];
    const none = roots.length === 0;
    $("#scan-folder").disabled = none;
    $("#scan-start").disabled = none || scanTimer !== null;
    $("#scan-folder-label").hidden = none;
    $("#scan-folder").closest(".row").hidden = none;
    $("#scan-root-choice").hidden = roots.length < 2;
    const where = $("#scan-where");
    if (none) {
      where.replaceChildren("This server may not read any folder of its own (it needs --library-root DIR): upload photos and videos below instead.");
    } else if (roots.length === 1) {
      where.replaceChildren("Photos and videos are read from ", el("code", { class: "path", text: roots[0] }), " on the server, or uploaded below.");
      $("#scan-folder-label").textContent = "Folder to scan, inside it";
    } else {
      where.replaceChildren(
        `Photos and videos are read from ${roots.length} folders on the server, or uploaded below: `,
        ...roots.flatMap((root, i) => [i ? ", " : "", el("code", { class: "path", text: root })]),
        ".",
      );
      const chosen = $("#scan-root").value;
      $("#scan-root").replaceChildren(...roots.map((root) => el("option", { value: root, text: root })));
      if (roots.includes(chosen)) $("#scan-root").value = chosen;
      $("#scan-folder-label").textContent = "Folder to scan, inside the library folder chosen";
    }
    showPrefix();
    $("#scan-roots").textContent = none
      ? ""
      : "Leave it empty to scan the whole library folder; a full path inside it works too. " +
        `The library holds ${plural(stats.done, "file")} read, ${plural(stats.faces, "face")}.`;
  }

  /** The library folder the typed folder is relative to, shown before the field. */
  function showPrefix() {
    const root = chosenRoot();
    $("#scan-prefix").hidden = !root;
    $("#scan-prefix").textContent = root ? `${root.replace(/\/+$/, "")}/` : "";
  }

  function chosenRoot() {
    return roots.length === 1 ? roots[0] : roots.length > 1 ? $("#scan-root").value : "";
  }

  /** What to ask the server to scan: the folder typed, relative to the library folder (its
   * one folder, or the one chosen), a full path as typed, or the library folder itself. */
  function folderToScan() {
    const typed = $("#scan-folder").value.trim();
    if (typed.startsWith("/") || typed.startsWith("~")) return typed; // the server checks it is inside
    const relative = typed.replace(/^(\.\/)+/, "").replace(/^\.$/, "");
    const root = chosenRoot();
    if (!relative) return root;
    if (roots.length === 1) return relative; // the server finds it inside its one folder
    return `${root.replace(/\/+$/, "")}/${relative}`;
  }

  let scanning = ""; // what the running scan reads, as the person named it

  async function startScan(request, label) {
    scanning = label;
    say("scan-error", "");
    say("scan-result", "");
    $("#scan-failures-box").hidden = true;
    $("#scan-start").disabled = true;
    try {
      const started = await api("POST", request.path, request.body);
      watch(started.job);
    } catch (error) {
      say("scan-error", error.message);
      $("#scan-start").disabled = false;
    }
  }

  /** A scan still running (started before this page was opened) is followed again. */
  async function resumeWatching() {
    try {
      const jobs = await api("GET", "/api/jobs");
      const running = jobs.find((job) => job.kind === "library_scan" && !FINISHED.includes(job.state));
      if (running && scanTimer === null) {
        scanning = running.input;
        $("#scan-start").disabled = true;
        watch(running.id);
      }
    } catch {
      // the jobs list is a convenience here: the scan form still works without it
    }
  }

  function watch(jobId) {
    clearTimeout(scanTimer);
    scanTimer = 0;
    $("#scan-progress").hidden = false;
    const poll = async () => {
      let job;
      try {
        job = await api("GET", `/api/jobs/${jobId}`);
      } catch (error) {
        say("scan-error", error.message);
        $("#scan-start").disabled = false;
        scanTimer = null;
        return;
      }
      $("#scan-bar").value = job.progress;
      $("#scan-message").textContent = `${Math.round(job.progress * 100)}% ${job.message || job.state}`;
      if (!FINISHED.includes(job.state)) {
        scanTimer = setTimeout(poll, POLL_MS);
        return;
      }
      $("#scan-start").disabled = false;
      scanTimer = null;
      if (job.state === "done") finished(job.result.summary);
      else say("scan-error", `The scan ${job.state}: ${(job.error && job.error.message) || ""}`);
      await Promise.all([loadGroups(groups.length), loadPeople(), describeRoots()]);
    };
    poll();
  }

  function finished(summary) {
    $("#scan-message").textContent = "100% done";
    say("scan-result", scanSentences(summary, scanning).join(" "));
    const failures = scanFailures(summary);
    $("#scan-failures-box").hidden = failures.length === 0;
    $("#scan-failures-box").open = failures.length > 0 && failures.length <= 10;
    $("#scan-failures-title").textContent = `${plural(summary.failed, "file")} could not be read`;
    $("#scan-failures").replaceChildren(...failureItems(failures));
  }

  function scanFolder(event) {
    event.preventDefault();
    const folder = folderToScan();
    if (!folder) {
      say("scan-error", "This server may not read any folder: upload photos and videos instead.");
      return;
    }
    startScan({ path: "/api/library/scan", body: { json: { folder } } }, folder);
  }

  function scanUpload(files) {
    const form = new FormData();
    form.append("file", files[0], files[0].name);
    startScan({ path: "/api/library/scan/upload", body: { form } }, `the upload ${files[0].name}`);
  }

  // --- the view ------------------------------------------------------------------------------

  async function show() {
    const name = decodeURIComponent(location.hash.split("/")[2] || "");
    $("#people-home").hidden = Boolean(name);
    $("#person-detail").hidden = !name;
    if (name) {
      await person.show(name);
      return;
    }
    $("#scan-card").hidden = !session.can("enroll");
    if (session.can("enroll") && scanTimer === null) resumeWatching();
    document.querySelectorAll(".needs-enroll").forEach((node) => (node.hidden = !session.can("enroll")));
    const work = [loadPeople(), loadGroups(Math.max(groups.length, PAGE))];
    if (session.can("enroll")) work.push(describeRoots());
    await Promise.all(work);
  }

  $("#people-filter").addEventListener("input", renderPeople);
  $("#groups-more").addEventListener("click", more);
  $("#groups-merge").addEventListener("click", merge);
  $("#library-undo").addEventListener("click", undo);
  $("#groups-hidden").addEventListener("change", () => {
    selected.clear();
    groups = [];
    loadGroups();
  });
  $("#scan-form").addEventListener("submit", scanFolder);
  $("#scan-root").addEventListener("change", showPrefix);
  dropZone($("#scan-drop"), $("#scan-file"), scanUpload, () => true);
  return {
    show,
    stop() {
      clearTimeout(scanTimer);
      scanTimer = null;
    },
  };
}
