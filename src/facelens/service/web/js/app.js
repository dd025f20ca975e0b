// The page: log in with an API key, then one view per section (#/people, #/enroll, ...).

import { api, ApiError, onUnauthorised } from "./api.js";
import { $, say, takeFlash } from "./dom.js";
import { setupEnroll } from "./enroll.js";
import { setupIdentify } from "./identify.js";
import { setupJobs } from "./jobs.js";
import { setupPeople } from "./people.js";
import { setupSearch } from "./search.js";
import { setupVerify } from "./verify.js";

const VIEWS = ["people", "enroll", "identify", "search", "verify", "jobs"];
const ROLES = ["query", "enroll", "admin"];

/** What every view may ask about the session. */
export const session = {
  key: null, // {id, name, role} of the logged-in key
  can(role) {
    return this.key !== null && ROLES.indexOf(this.key.role) >= ROLES.indexOf(role);
  },
};

const views = {};

function showLogin(message) {
  session.key = null;
  $("#nav").hidden = true;
  $("#who").hidden = true;
  document.querySelectorAll(".view").forEach((view) => (view.hidden = true));
  $("#view-login").hidden = false;
  say("login-error", message || "");
  $("#login-key").focus();
}

function showApp(key) {
  session.key = key;
  $("#view-login").hidden = true;
  $("#nav").hidden = false;
  $("#who").hidden = false;
  $("#who-name").textContent = `${key.name || key.id} (${key.role})`;
  route();
}

/** Show the view named in the URL hash (default: people). */
function route() {
  if (session.key === null) return;
  const wanted = location.hash.replace(/^#\/?/, "").split("/")[0];
  const name = VIEWS.includes(wanted) ? wanted : "people";
  for (const view of VIEWS) {
    $(`#view-${view}`).hidden = view !== name;
    $(`#nav a[data-view=${view}]`).classList.toggle("active", view === name);
  }
  say("flash", takeFlash());
  Promise.resolve(views[name].show()).finally(() => keepTheKeyboard(name));
}

/** When the control used went with the part of the page it was in (Erase, "All people"), the
 * keyboard goes on from what was said about it (the flash line), or from the view's tab. */
function keepTheKeyboard(name) {
  const focused = document.activeElement;
  if (focused && focused !== document.body && !focused.closest("[hidden]")) return;
  const flash = $("#flash");
  if (!flash.hidden) {
    flash.tabIndex = -1;
    flash.focus();
  } else {
    $(`#nav a[data-view=${name}]`).focus();
  }
}

async function logIn(event) {
  event.preventDefault();
  const key = $("#login-key").value.trim();
  if (!key) {
    say("login-error", "Type your API key first (it starts with fl_; `facelens keys create` makes one).");
    $("#login-key").focus();
    return;
  }
  const button = $("#login-submit");
  button.disabled = true;
  try {
    const who = await api("POST", "/api/session", { json: { key } });
    $("#login-key").value = "";
    showApp(who);
    $("#nav a.active").focus(); // the keyboard starts at the top of the page, not on <body>
  } catch (error) {
    say("login-error", error instanceof ApiError ? error.message : String(error));
  } finally {
    button.disabled = false;
  }
}

async function logOut() {
  try {
    await api("DELETE", "/api/session");
  } finally {
    views.jobs.stop();
    views.people.stop();
    showLogin("You are logged out.");
  }
}

async function start() {
  views.people = setupPeople(session);
  views.enroll = setupEnroll(session);
  views.identify = setupIdentify(session);
  views.search = setupSearch(session);
  views.verify = setupVerify(session);
  views.jobs = setupJobs(session);
  $("#login-form").addEventListener("submit", logIn);
  $("#logout").addEventListener("click", logOut);
  window.addEventListener("hashchange", route);
  onUnauthorised((message) => {
    views.jobs.stop();
    views.people.stop();
    showLogin(`Please log in again: ${message}`);
  });
  try {
    showApp(await api("GET", "/api/session")); // the cookie of an earlier log-in
  } catch {
    showLogin("");
  }
}

start();
