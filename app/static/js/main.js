// Entry point: session handling and hash routing (#/ = jobs, #/jobs/ID = one job).

import { api, onUnauthorized } from "./api.js";
import { $, show } from "./dom.js";
import { closeJobs, openJobs } from "./jobs.js";
import { closeJob, openJob } from "./jobview.js";

let loggedIn = false;

function route() {
  closeJobs();
  closeJob();
  if (!loggedIn) return showLogin();
  const match = location.hash.match(/^#\/jobs\/(.+)$/);
  if (match) {
    show("job-view");
    openJob(decodeURIComponent(match[1]));
  } else {
    show("jobs-view");
    openJobs();
  }
  $("#main").focus({ preventScroll: true });
}

function showLogin() {
  loggedIn = false;
  closeJobs();
  closeJob();
  $("#logout").hidden = $("#user").hidden = true;
  show("login-view");
  $("#token").focus();
}

function loggedInAs(user) {
  loggedIn = true;
  if (user) {
    $("#user").textContent = user.admin ? `${user.user} (admin)` : user.user;
    $("#user").hidden = false;
  }
  $("#logout").hidden = false;
  route();
}

async function login(token) {
  const user = await api.login(token);
  $("#token").value = "";
  $("#login-error").textContent = "";
  loggedInAs(user);
}

function loginFailed(error) {
  // 429 (too many failed logins) says in its detail when to try again.
  const message = error.status === 401
    ? "That token was not accepted. Check it and try again."
    : `Could not log in: ${error.detail}`;
  showLogin();
  $("#login-error").textContent = message;
}

const LINK_SPENT = "This login link was used already or has expired. " +
  "Log in with the token kept in the data dir's admin-token file.";

/** The service's first start prints a login URL with a one-time ?code=…; take it out of
 * the address bar (and history) before anything else, then trade it for a session. An old
 * ?token=… link is taken out too, unused: a token does not belong in a URL. */
function codeFromUrl() {
  const url = new URL(location.href);
  const code = url.searchParams.get("code");
  if (code === null && !url.searchParams.has("token")) return null;
  url.searchParams.delete("code");
  url.searchParams.delete("token");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
  return code;
}

async function start() {
  const code = codeFromUrl();
  let spent = false;
  if (code) {
    try {
      return loggedInAs(await api.loginWithCode(code));
    } catch (error) {
      if (error.status !== 401) return loginFailed(error);
      spent = true; // but this browser may still have a session from the first use
    }
  }
  try {
    await api.jobs();
    loggedInAs(null);
  } catch (error) {
    if (error.status !== 401) return loginFailed(error);
    showLogin();
    if (spent) $("#login-error").textContent = LINK_SPENT;
  }
}

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("#token").value.trim();
  if (!token) {
    $("#login-error").textContent = "Enter your access token.";
    return;
  }
  login(token).catch(loginFailed);
});

$("#logout").addEventListener("click", async () => {
  await api.logout().catch(() => null);
  showLogin();
});

onUnauthorized(() => {
  if (!loggedIn) return;
  showLogin();
  $("#login-error").textContent = "Your session has ended. Log in again.";
});

window.addEventListener("hashchange", route);
start();
