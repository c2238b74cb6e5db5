// The result: a days × periods grid with filters, the cost breakdown with
// offending lectures highlighted, downloads and unplaced lectures.

import { api, timetableUrl } from "./api.js";
import { $, h } from "./dom.js";
import { CONSTRAINTS, messages, offenders } from "./violations.js";

const FILTERS = [
  { select: "#filter-curriculum", label: "All curricula", values: (l) => l.curricula ?? [] },
  { select: "#filter-teacher", label: "All teachers", values: (l) => (l.teacher ? [l.teacher] : []) },
  { select: "#filter-room", label: "All rooms", values: (l) => [l.room] },
];

let state = null; // { data, days, periods, bad: Map(constraint → predicate), highlight }

export function hideResult() {
  state = null;
  $("#result").hidden = true;
}

function shape(data) {
  const maxOf = (field) => Math.max(0, ...data.lectures.map((l) => l[field] + 1));
  return {
    days: data.days ?? data.instance?.days ?? maxOf("day"),
    periods: data.periods_per_day ?? data.instance?.periods_per_day ?? maxOf("period"),
  };
}

function fillFilters(lectures) {
  for (const f of FILTERS) {
    const names = [...new Set(lectures.flatMap(f.values))].sort();
    const select = $(f.select);
    select.replaceChildren(h("option", { value: "", text: f.label }), ...names.map((n) => h("option", { value: n, text: n })));
  }
}

function visible(lecture) {
  return FILTERS.every((f) => {
    const wanted = $(f.select).value;
    return !wanted || f.values(lecture).includes(wanted);
  });
}

function problemsOf(lecture) {
  return CONSTRAINTS.filter((c) => (state.data.cost?.[c.id] ?? 1) > 0 && state.bad.get(c.id)?.(lecture));
}

function chip(lecture) {
  const problems = problemsOf(lecture);
  const highlighted = state.highlight && problems.some((p) => p.id === state.highlight);
  const cls = ["lecture", problems.length ? "offending" : "", highlighted ? "highlight" : ""].filter(Boolean).join(" ");
  const title = [`${lecture.course} in ${lecture.room}`, lecture.teacher && `teacher ${lecture.teacher}`,
    ...problems.map((p) => p.label)].filter(Boolean).join(" · ");
  return h("div", { class: cls, title, "data-course": lecture.course },
    h("span", { class: "course", text: lecture.course }), " ", h("span", { class: "room", text: lecture.room }),
    problems.length ? h("span", { class: "visually-hidden", text: ` (${problems.map((p) => p.label).join(", ")})` }) : null);
}

function renderGrid() {
  const { days, periods, data } = state;
  const cells = Array.from({ length: days * periods }, () => []);
  for (const l of data.lectures) if (visible(l)) cells[l.day * periods + l.period]?.push(l);
  const head = h("tr", {}, h("th", { scope: "col", text: "Period" }),
    ...Array.from({ length: days }, (_, d) => h("th", { scope: "col", text: `Day ${d + 1}` })));
  const rows = Array.from({ length: periods }, (_, p) =>
    h("tr", {}, h("th", { scope: "row", text: `${p + 1}` }),
      ...Array.from({ length: days }, (_, d) => h("td", {}, ...cells[d * periods + p].map(chip)))));
  $("#grid").replaceChildren(h("thead", {}, head), h("tbody", {}, ...rows));
}

function toggleHighlight(id) {
  state.highlight = state.highlight === id ? null : id;
  renderBreakdown();
  renderGrid();
}

function renderBreakdown() {
  const { data } = state;
  const rows = CONSTRAINTS.map((c) => {
    const cost = data.cost?.[c.id] ?? 0;
    const count = cost > 0 && state.bad.has(c.id) ? data.lectures.filter(state.bad.get(c.id)).length : 0;
    const button = count
      ? h("button", { type: "button", class: "link", "aria-pressed": String(state.highlight === c.id), text: `Highlight ${count}` })
      : null;
    button?.addEventListener("click", () => toggleHighlight(c.id));
    const notes = state.notes.get(c.id) ?? [];
    const details = notes.length
      ? h("details", {}, h("summary", { text: `${notes.length} details` }), h("ul", {}, ...notes.map((m) => h("li", { text: m }))))
      : null;
    return h("tr", { class: cost > 0 ? "nonzero" : "" }, h("th", { scope: "row", text: c.label }),
      h("td", { text: c.kind }), h("td", { text: String(cost) }), h("td", {}, count ? `${count} ` : "–", button, details));
  });
  $("#breakdown tbody").replaceChildren(...rows);
}

function renderUnplaced(unplaced) {
  const counts = new Map();
  for (const u of unplaced ?? []) counts.set(u.course, (counts.get(u.course) ?? 0) + 1);
  $("#unplaced").replaceChildren(...[...counts].map(([course, n]) => h("li", { text: n > 1 ? `${course} × ${n}` : course })));
  $("#unplaced-block").hidden = counts.size === 0;
}

function summary(data, status) {
  const cost = data.cost ?? {};
  const words = status === "cancelled" ? "Best timetable found before cancelling" : "Final timetable";
  const feasible = cost.hard === 0 ? "feasible" : `${cost.hard} hard violations`;
  const unplaced = (data.unplaced ?? []).length;
  return `${words}: cost ${cost.soft ?? "?"}, ${feasible}, ${data.lectures.length} lectures placed` +
    (unplaced ? `, ${unplaced} unplaced.` : ".");
}

export async function showResult(jobId, status) {
  let data;
  try {
    data = await api.timetable(jobId);
  } catch (error) {
    $("#result-summary").textContent = error.status === 404 ? "No timetable was produced." : error.detail;
    $("#result").hidden = false;
    return;
  }
  const { days, periods } = shape(data);
  state = { data, days, periods, bad: offenders(data, periods), notes: messages(data), highlight: null };
  $("#result-summary").textContent = summary(data, status);
  for (const format of ["sol", "csv", "json"]) {
    const link = $(`#dl-${format}`);
    link.href = timetableUrl(jobId, format);
    link.download = `${jobId}.${format}`;
  }
  fillFilters(data.lectures);
  renderGrid();
  renderBreakdown();
  renderUnplaced(data.unplaced);
  $("#result").hidden = false;
}

for (const f of FILTERS) $(f.select).addEventListener("change", () => state && renderGrid());
