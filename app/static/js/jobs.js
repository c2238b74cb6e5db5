// The jobs list (polled while visible) and the new-job form.

import { api } from "./api.js";
import { $, h } from "./dom.js";
import { STATUS_WORDS, ageText, costText, progressColour } from "./words.js";

const POLL_MS = 3000;
let timer = null;
let samplesLoaded = false;

function progressCell(job) {
  const value = job.status === "completed" ? 100 : Math.floor(job.latest?.overall_progress ?? 0);
  const bar = h("div", { class: "bar tiny", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": String(value), "aria-label": `${job.name || job.id} progress` }, h("div", { class: "fill" }));
  const fill = bar.firstChild;
  fill.style.width = `${value}%`;
  fill.style.backgroundColor = progressColour(value);
  return h("td", {}, bar, h("span", { class: "muted", text: ` ${value} %` }));
}

function row(job) {
  const cost = job.result ? { hard: job.result.hard, soft: job.result.soft } : job.latest?.best;
  return h("tr", { "data-job": job.id },
    h("th", { scope: "row" }, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}`, text: job.name || job.id })),
    h("td", {}, h("span", { class: "badge", "data-status": job.status, text: STATUS_WORDS[job.status] ?? job.status }),
      job.feasible === false ? h("span", { class: "tag-incomplete", text: "incomplete" }) : null),
    progressCell(job),
    h("td", { text: costText(cost) }),
    h("td", { text: ageText(job.created_at) }));
}

async function refresh() {
  try {
    const { jobs } = await api.jobs();
    $("#jobs-table tbody").replaceChildren(...jobs.map(row));
    $("#jobs-empty").hidden = jobs.length > 0;
    $("#jobs-error").textContent = "";
  } catch (error) {
    if (error.status !== 401) $("#jobs-error").textContent = error.detail;
  }
}

async function tick() {
  await refresh();
  if (timer !== null) timer = setTimeout(tick, POLL_MS);
}

export function openJobs() {
  closeJobs();
  timer = setTimeout(tick, 0);
  if (!samplesLoaded) loadSamples();
}

export function closeJobs() {
  clearTimeout(timer);
  timer = null;
}

async function loadSamples() {
  try {
    const { samples } = await api.samples();
    $("#sample").replaceChildren(...samples.map((s) =>
      h("option", { value: s.name, text: `${s.name} — ${s.courses} courses, ${s.lectures} lectures` })));
    samplesLoaded = true;
  } catch (error) {
    $("#submit-error").textContent = error.detail;
  }
}

function sourceChanged() {
  const upload = $("#new-job-form").elements.source.value === "upload";
  $("#upload-field").hidden = !upload;
  $("#sample-field").hidden = upload;
}

function requestBody(form) {
  const timeLimit = Number(form.elements.time_limit.value);
  if (form.elements.source.value === "sample") return { sample: form.elements.sample.value, time_limit: timeLimit };
  const file = form.elements.instance.files[0];
  if (!file) return null;
  const body = new FormData();
  body.append("instance", file, file.name);
  body.append("time_limit", String(timeLimit));
  body.append("name", file.name.replace(/\.ctt$/i, ""));
  return body;
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const uploading = form.elements.source.value === "upload";
  const errorBox = uploading ? $("#upload-error") : $("#submit-error");
  $("#upload-error").textContent = $("#submit-error").textContent = "";
  const body = requestBody(form);
  if (!body) {
    errorBox.textContent = "Choose a .ctt file to upload.";
    return;
  }
  $("#submit-job").disabled = true;
  try {
    const job = await api.submit(body);
    location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
  } catch (error) {
    errorBox.textContent = error.detail;
  } finally {
    $("#submit-job").disabled = false;
  }
}

$("#new-job-form").addEventListener("submit", submit);
for (const radio of $("#new-job-form").elements.source) radio.addEventListener("change", sourceChanged);
