// The job view: live progress of one job, Cancel, then the result.

import { api } from "./api.js";
import { EtaSmoother, SmoothBar, paintStageBar } from "./bar.js";
import { $, announce, h } from "./dom.js";
import { showResult, hideResult } from "./result.js";
import { JobStream } from "./stream.js";
import { STAGES, STATUS_WORDS, TERMINAL, costText, describe, durationText, itemsText, verdictText } from "./words.js";

const CONNECTION_WORDS = { live: "Live", reconnecting: "Reconnecting…", polling: "Polling every 5 s", closed: "Finished", idle: "" };

let current = null; // { id, stream, eta, stage, status }
const overall = new SmoothBar($("#overall"), $("#overall-value"), { onValue: announceTenths });
let lastTenth = 0;

function announceTenths(value) {
  const tenth = Math.floor(value / 10);
  if (tenth > lastTenth && value < 100) announce(`${tenth * 10} percent done`);
  lastTenth = Math.max(lastTenth, tenth);
}

function setConnection(state) {
  const el = $("#connection");
  el.dataset.state = state;
  $(".label", el).textContent = CONNECTION_WORDS[state] ?? state;
}

function renderPipeline(stage, status) {
  const active = STAGES.findIndex((s) => s.id === stage);
  const allDone = status === "completed";
  $("#pipeline").replaceChildren(
    ...STAGES.map((s, i) => {
      const state = allDone || (active >= 0 && i < active) ? "done" : i === active && !TERMINAL.has(status) ? "active" : "pending";
      const word = { done: "done", active: "in progress", pending: "pending" }[state];
      return h("li", { class: state, "data-stage": s.id, "aria-current": state === "active" ? "step" : null },
        h("span", { class: "step-label", text: s.label }), h("span", { class: "visually-hidden", text: `, ${word}` }));
    }),
  );
}

function setStatus(status) {
  const badge = $("#job-status");
  badge.textContent = STATUS_WORDS[status] ?? status;
  badge.dataset.status = status;
  $("#cancel-job").hidden = TERMINAL.has(status) || status === "stopping";
}

function applyEvent(event) {
  if (!current) return;
  if (event.stage !== current.stage && event.stage && !TERMINAL.has(event.status)) {
    announce(describe(event));
  }
  current.stage = event.stage ?? current.stage;
  if (current.status !== "stopping" || TERMINAL.has(event.status)) setStatus(event.status);
  current.status = event.status;
  $("#stage-words").textContent = describe(event);
  overall.setTarget(event.overall_progress);
  paintStageBar($("#stage-bar"), $("#stage-value"), event.stage_progress);
  renderPipeline(current.stage, event.status);
  $("#items").textContent = itemsText(event);
  $("#best").textContent = costText(event.best);
  $("#attempt").textContent = String(event.attempt ?? 1);
  current.eta.update(event.eta_seconds);
  if (event.error) $("#job-error").textContent = event.error;
}

/** The warning banner for an infeasible result; `ending` is a snapshot or a `done` event. */
function showVerdict(ending, status) {
  const text = verdictText(ending, status) ?? "";
  const banner = $("#verdict");
  if (banner.textContent !== text) banner.textContent = text; // unchanged words are not announced again
  banner.hidden = text === "";
}

/** The pre-solve check's warnings of the job (a snapshot's `warnings`), listed under the title. */
function showWarnings(warnings) {
  const list = warnings ?? [];
  $("#check-warnings ul").replaceChildren(...list.map((text) => h("li", { text })));
  $("#check-warnings").hidden = list.length === 0;
}

async function finish(ending) {
  if (!current) return;
  const job = current;
  const status = ending.status;
  showVerdict(ending, status);
  job.status = status;
  setStatus(status);
  if (status === "completed") overall.setTarget(100);
  job.eta.stop(status === "completed" ? 0 : null);
  renderPipeline(job.stage, status);
  announce(`Job ${STATUS_WORDS[status]?.toLowerCase() ?? status}`);
  try {
    const snapshot = await api.job(job.id);
    if (snapshot.latest) applyEvent(snapshot.latest);
    setStatus(snapshot.status);
    if (snapshot.status === "completed") overall.setTarget(100);
    showVerdict(snapshot, snapshot.status);
  } catch {
    // The result below is what matters; a stale header is harmless.
  }
  if (current === job) await showResult(job.id, status);
}

function resetView(id) {
  overall.reset();
  lastTenth = 0;
  hideResult();
  $("#job-title").textContent = `Job ${id}`;
  $("#job-error").textContent = "";
  showVerdict(null, "queued");
  showWarnings([]);
  $("#stage-words").textContent = describe(null);
  for (const sel of ["#items", "#best", "#eta"]) $(sel).textContent = "–";
  paintStageBar($("#stage-bar"), $("#stage-value"), 0);
  renderPipeline(null, "queued");
  setStatus("queued");
  setConnection("idle");
}

export async function openJob(id) {
  closeJob();
  resetView(id);
  const eta = new EtaSmoother((s) => ($("#eta").textContent = durationText(s)));
  current = { id, eta, stage: null, status: "queued", stream: null };
  let snapshot;
  try {
    snapshot = await api.job(id);
  } catch (error) {
    $("#job-error").textContent = error.detail ?? error.message;
    return;
  }
  $("#job-title").textContent = snapshot.name || `Job ${id}`;
  showWarnings(snapshot.warnings);
  if (snapshot.latest) applyEvent(snapshot.latest);
  setStatus(snapshot.status);
  if (TERMINAL.has(snapshot.status)) return finish(snapshot);
  const stream = new JobStream(id, {
    onEvent: applyEvent,
    onDone: finish,
    onState: setConnection,
    onGone: (error) => ($("#job-error").textContent = error.detail ?? error.message),
  });
  current.stream = stream;
  if (snapshot.latest) stream.lastSeq = snapshot.latest.seq;
  stream.start();
}

export function closeJob() {
  if (!current) return;
  current.stream?.close();
  current.eta.stop();
  current = null;
}

async function confirmCancel() {
  const dialog = $("#cancel-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "cancel" || !current) return;
  try {
    const answer = await api.cancel(current.id);
    setStatus(answer.status);
    current.status = answer.status;
    announce(answer.status === "stopping" ? "Stopping the job" : `Job ${answer.status}`);
  } catch (error) {
    $("#job-error").textContent = error.detail ?? error.message;
  }
}

$("#cancel-job").addEventListener("click", confirmCancel);
