// Follows one job: SSE while it works, polling GET /api/jobs/{id} while it does
// not, and back to SSE as soon as the server answers again.
//
// EventSource reconnects by itself and sends Last-Event-ID; this class only
// steps in after repeated failures (or when the browser gives up), and drops
// events it has already seen, so replays after a fresh connection are harmless.

import { api, eventsUrl } from "./api.js";

const MAX_FAILURES = 3;
const POLL_MS = 5000;

export class JobStream {
  /**
   * handlers: onEvent(progressEvent), onDone({status, feasible, unplaced, hard_violations}), onState("live"|"reconnecting"|"polling"|"closed"),
   * onGone(error) when the job is missing or the session ended.
   */
  constructor(jobId, handlers) {
    this.jobId = jobId;
    this.h = handlers;
    this.lastSeq = 0;
    this.failures = 0;
    this.source = null;
    this.pollTimer = null;
    this.polling = false;
    this.finished = false;
  }

  start() {
    this.open();
  }

  close() {
    this.finished = true;
    this.closeSource();
    this.stopPolling();
    this.h.onState("closed");
  }

  open() {
    if (this.finished) return;
    // A fresh EventSource has no Last-Event-ID; the query parameter resumes it instead.
    const resume = this.lastSeq > 0 ? `?last_event_id=${this.lastSeq}` : "";
    const source = new EventSource(eventsUrl(this.jobId) + resume);
    this.source = source;
    source.addEventListener("connected", () => {
      this.failures = 0;
      this.stopPolling();
      this.h.onState("live");
    });
    source.addEventListener("progress", (e) => this.receive(JSON.parse(e.data)));
    source.addEventListener("snapshot", (e) => this.receive(JSON.parse(e.data)));
    source.addEventListener("done", (e) => this.finish(JSON.parse(e.data)));
    source.onerror = () => this.failed(source);
  }

  closeSource() {
    if (this.source) this.source.close();
    this.source = null;
  }

  receive(event) {
    if (!event || event.seq <= this.lastSeq) return;
    this.lastSeq = event.seq;
    this.h.onEvent(event);
  }

  finish(data) {
    if (this.finished) return;
    this.close();
    this.h.onDone(data);
  }

  failed(source) {
    if (this.finished || source !== this.source) return;
    this.failures += 1;
    // CLOSED: the browser will not retry (e.g. a 502 from a proxy, a 401, a 404).
    if (this.failures < MAX_FAILURES && source.readyState !== EventSource.CLOSED) {
      this.h.onState("reconnecting");
      return;
    }
    this.closeSource();
    this.startPolling();
  }

  startPolling() {
    if (this.polling) return;
    this.polling = true;
    this.h.onState("polling");
    this.poll();
  }

  stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  // Every POLL_MS while polling: the snapshot keeps the page current, and each answer
  // is a cue to try the stream again; its `connected` event ends the polling.
  async poll() {
    this.pollTimer = null;
    if (this.finished || !this.polling) return;
    let snapshot = null;
    try {
      snapshot = await api.job(this.jobId);
    } catch (error) {
      if (error.status === 401 || error.status === 404) return this.gone(error);
    }
    if (this.finished || !this.polling) return;
    this.pollTimer = setTimeout(() => this.poll(), POLL_MS);
    if (snapshot === null) return;
    if (snapshot.latest) this.receive(snapshot.latest);
    if (["completed", "cancelled", "failed"].includes(snapshot.status)) {
      return this.finish(snapshot); // it carries the same fields as `done`
    }
    if (!this.source) this.open();
  }

  gone(error) {
    this.close();
    this.h.onGone(error);
  }
}
