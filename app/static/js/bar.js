// Display-side smoothing: a progress bar that eases toward the server's value
// without ever going backwards or ahead of it, and an ETA that counts down
// between events instead of jumping with every estimate.

import { progressColour } from "./words.js";

const EASE_PER_SECOND = 4; // fraction of the remaining gap closed per second (exponential)
const MIN_SPEED = 2; // percent per second, so the last sliver does not crawl

export class SmoothBar {
  /** `element` has role=progressbar and a `.fill` child; `caption` shows "42 %". */
  constructor(element, caption, { onValue } = {}) {
    this.element = element;
    this.fill = element.querySelector(".fill");
    this.caption = caption;
    this.onValue = onValue ?? (() => {});
    this.shown = 0;
    this.target = 0;
    this.lastFrame = null;
    this.frame = null;
    this.paint();
  }

  /** Raise the target to the server's value; lower values are ignored (monotonic). */
  setTarget(percent) {
    const value = Math.min(100, Math.max(0, Number(percent) || 0));
    if (value <= this.target) return;
    this.target = value;
    this.schedule();
  }

  /** Start over for another job. */
  reset() {
    this.target = 0;
    this.shown = 0;
    this.paint();
  }

  schedule() {
    if (this.frame !== null) return;
    this.lastFrame = null;
    this.frame = requestAnimationFrame((t) => this.step(t));
  }

  step(now) {
    const dt = this.lastFrame === null ? 1 / 60 : Math.min(0.25, (now - this.lastFrame) / 1000);
    this.lastFrame = now;
    const gap = this.target - this.shown;
    const move = Math.max(gap * (1 - Math.exp(-EASE_PER_SECOND * dt)), MIN_SPEED * dt);
    this.shown = Math.min(this.target, this.shown + move);
    this.paint();
    this.frame = this.shown < this.target ? requestAnimationFrame((t) => this.step(t)) : null;
  }

  paint() {
    const value = Math.floor(this.shown * 10) / 10;
    this.fill.style.width = `${this.shown}%`;
    this.fill.style.backgroundColor = progressColour(this.shown);
    const rounded = Math.floor(value);
    if (this.element.getAttribute("aria-valuenow") !== String(rounded)) {
      this.element.setAttribute("aria-valuenow", String(rounded));
      this.element.setAttribute("aria-valuetext", `${rounded} percent`);
      if (this.caption) this.caption.textContent = `${rounded} %`;
      this.onValue(rounded);
    }
  }
}

/** A stage bar simply follows the server (it restarts at 0 for every stage). */
export function paintStageBar(element, caption, percent) {
  const value = Math.min(100, Math.max(0, Number(percent) || 0));
  element.querySelector(".fill").style.width = `${value}%`;
  element.setAttribute("aria-valuenow", String(Math.floor(value)));
  caption.textContent = `${Math.floor(value)} %`;
}

const ETA_WEIGHT = 0.3; // weight of a fresh server estimate against the running one

export class EtaSmoother {
  constructor(render) {
    this.render = render;
    this.value = null;
    this.at = 0;
    this.timer = null;
  }

  /** Blend in a server estimate (seconds, or null while unknown). */
  update(seconds) {
    if (seconds == null) return;
    const current = this.current();
    this.value = current == null || seconds === 0 ? seconds : ETA_WEIGHT * seconds + (1 - ETA_WEIGHT) * current;
    this.at = performance.now();
    this.render(this.value);
    if (this.timer === null) this.timer = setInterval(() => this.render(this.current()), 1000);
  }

  /** The smoothed estimate counted down by the time since it was set. */
  current() {
    if (this.value == null) return null;
    return Math.max(0, this.value - (performance.now() - this.at) / 1000);
  }

  stop(finalSeconds = null) {
    clearInterval(this.timer);
    this.timer = null;
    this.value = finalSeconds;
    this.render(finalSeconds);
  }
}
