// Human words for stages, statuses, costs and durations.

export const STAGES = [
  { id: "loading", label: "Loading", doing: "Loading the instance", unit: "step" },
  { id: "clustering", label: "Organizing", doing: "Organizing courses into groups", unit: "step" },
  { id: "cpsat_solving", label: "Building", doing: "Building the timetable group by group", unit: "group" },
  { id: "ga_optimization", label: "Optimizing", doing: "Optimizing with a genetic search", unit: "generation" },
  { id: "rl_refinement", label: "Finalizing", doing: "Finalizing: polishing the best timetable", unit: "iteration" },
];

export const STATUS_WORDS = {
  queued: "Queued",
  running: "Running",
  completed: "Completed",
  cancelled: "Cancelled",
  failed: "Failed",
  stopping: "Stopping",
};

export const TERMINAL = new Set(["completed", "cancelled", "failed"]);

export function stageInfo(id) {
  return STAGES.find((s) => s.id === id) ?? null;
}

/** "Building the timetable group by group" / "Waiting in the queue (2 ahead)". */
export function describe(event) {
  if (!event) return "Waiting for the first report…";
  if (event.status === "queued") {
    const pos = event.queue_position;
    return pos ? `Waiting in the queue (position ${pos})` : "Waiting in the queue";
  }
  if (event.status === "completed") return "Finished";
  if (event.status === "cancelled") return "Cancelled — showing the best timetable found";
  if (event.status === "failed") return "Failed";
  return stageInfo(event.stage)?.doing ?? event.message ?? "Working";
}

/** "group 74 of 216", from event.items. */
export function itemsText(event) {
  if (!event?.items?.total) return "–";
  const unit = stageInfo(event.stage)?.unit ?? "step";
  const n = (x) => x.toLocaleString("en");
  return `${unit} ${n(event.items.done)} of ${n(event.items.total)}`;
}

const plural = (n, one, many) => `${n.toLocaleString("en")} ${n === 1 ? one : many}`;

/**
 * "This timetable is incomplete: 41 lectures could not be placed." from a job's verdict
 * ({feasible, unplaced, hard_violations} of a snapshot or `done`); null unless it is known to be infeasible.
 */
export function verdictText(verdict, status) {
  if (verdict?.feasible !== false) return null;
  const unplaced = verdict.unplaced ?? 0;
  const others = Math.max(0, (verdict.hard_violations ?? 0) - unplaced);
  const parts = [];
  if (unplaced) {
    const how = status === "completed" ? "could not be placed" : unplaced === 1 ? "was not placed" : "were not placed";
    parts.push(`${plural(unplaced, "lecture", "lectures")} ${how}`);
  }
  if (others) {
    const other = unplaced ? "other " : "";
    parts.push(plural(others, `${other}hard violation remains`, `${other}hard violations remain`));
  }
  const head = unplaced ? "This timetable is incomplete" : "This timetable breaks hard constraints";
  return `${head}: ${parts.join(", and ")}.`;
}

export function costText(best) {
  if (!best) return "–";
  return best.hard > 0 ? `${best.soft} (${best.hard} hard violations)` : `${best.soft}`;
}

export function durationText(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function ageText(unixSeconds, now = Date.now() / 1000) {
  const s = Math.max(0, now - unixSeconds);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** Red (0 %) to green (100 %) along the hue circle. */
export function progressColour(percent) {
  const hue = Math.round(Math.min(100, Math.max(0, percent)) * 1.2);
  return `hsl(${hue} 70% 42%)`;
}
