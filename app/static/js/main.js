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
  const message = error.status === 401 || error.status === 403
    ? "That token was not accepted. Check it and try again."
    : `Could not log in: ${error.detail}`;
  showLogin();
  $("#login-error").textContent = message;
}

/** The service prints a one-time login URL with ?token=…; use it once and strip it. */
function tokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token === null) return null;
  url.searchParams.delete("token");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
  return token;
}

async function start() {
  const token = tokenFromUrl();
  if (token) return login(token).catch(loginFailed);
  try {
    await api.jobs();
    loggedInAs(null);
  } catch (error) {
    if (error.status === 401) showLogin();
    else loginFailed(error);
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
