// Which lectures cause which cost: the server's `violations` list when it has one,
// otherwise what can be derived from the timetable JSON alone.

export const CONSTRAINTS = [
  { id: "lectures", label: "Lectures (missing or extra)", kind: "hard" },
  { id: "conflicts", label: "Conflicts (teacher or curriculum)", kind: "hard" },
  { id: "availability", label: "Unavailable periods", kind: "hard" },
  { id: "room_occupation", label: "Double-booked rooms", kind: "hard" },
  { id: "room_capacity", label: "Rooms too small", kind: "soft" },
  { id: "min_working_days", label: "Below minimum working days", kind: "soft" },
  { id: "curriculum_compactness", label: "Isolated lectures", kind: "soft" },
  { id: "room_stability", label: "Room changes", kind: "soft" },
];

const key = (course, day, period) => `${course}|${day}|${period}`;

function constraintOf(v) {
  return v.constraint ?? v.kind ?? v.type ?? v.category ?? "";
}

/** The violation's lectures as {course, day?, period?} (day/period absent: every lecture of the course). */
function targetsOf(v) {
  if (Array.isArray(v.lectures)) return v.lectures;
  if (Array.isArray(v.courses)) return v.courses.map((course) => ({ course }));
  return v.course ? [{ course: v.course, day: v.day, period: v.period }] : [];
}

function matcher(targets) {
  const exact = new Set();
  const whole = new Set();
  for (const t of targets) {
    if (t.day == null || t.period == null) whole.add(t.course);
    else exact.add(key(t.course, t.day, t.period));
  }
  return (l) => whole.has(l.course) || exact.has(key(l.course, l.day, l.period));
}

function fromServer(violations) {
  const byConstraint = new Map();
  for (const v of violations) {
    const id = constraintOf(v);
    if (!byConstraint.has(id)) byConstraint.set(id, []);
    byConstraint.get(id).push(...targetsOf(v));
  }
  return new Map([...byConstraint].filter(([, t]) => t.length > 0).map(([id, targets]) => [id, matcher(targets)]));
}

function isolated(lectures, periodsPerDay) {
  const occupied = new Set();
  for (const l of lectures) for (const q of l.curricula ?? []) occupied.add(key(q, l.day, l.period));
  const hasNeighbour = (q, l) =>
    (l.period > 0 && occupied.has(key(q, l.day, l.period - 1))) ||
    (l.period < periodsPerDay - 1 && occupied.has(key(q, l.day, l.period + 1)));
  return (l) => (l.curricula ?? []).some((q) => !hasNeighbour(q, l));
}

function roomChanges(lectures) {
  const rooms = new Map();
  for (const l of lectures) rooms.set(l.course, (rooms.get(l.course) ?? new Set()).add(l.room));
  return (l) => rooms.get(l.course).size > 1;
}

function belowMinDays(lectures) {
  const days = new Map();
  for (const l of lectures) days.set(l.course, (days.get(l.course) ?? new Set()).add(l.day));
  return (l) => l.min_working_days != null && days.get(l.course).size < l.min_working_days;
}

/** Lectures sharing a slot with another that has the same value of `keysOf` (a teacher, a curriculum, a room). */
function clashes(lectures, keysOf) {
  const seen = new Map();
  for (const l of lectures) {
    for (const k of keysOf(l)) {
      const slot = key(k, l.day, l.period);
      seen.set(slot, (seen.get(slot) ?? new Set()).add(l.course));
    }
  }
  return (l) => keysOf(l).some((k) => seen.get(key(k, l.day, l.period)).size > 1);
}

function derived(data, periodsPerDay) {
  const lectures = data.lectures;
  const found = new Map([
    ["conflicts", clashes(lectures, (l) => [`t:${l.teacher}`, ...(l.curricula ?? []).map((q) => `q:${q}`)])],
    ["room_occupation", clashes(lectures, (l) => [`r:${l.room}`])],
    ["curriculum_compactness", isolated(lectures, periodsPerDay)],
    ["room_stability", roomChanges(lectures)],
    ["min_working_days", belowMinDays(lectures)],
  ]);
  if (lectures.some((l) => l.students != null && l.capacity != null)) {
    found.set("room_capacity", (l) => l.students > l.capacity);
  }
  return found;
}

/** Map constraint id → predicate(lecture) telling whether the lecture offends it:
 * derived from the lectures, overridden by the server's violations where they name lectures. */
export function offenders(data, periodsPerDay) {
  return new Map([...derived(data, periodsPerDay), ...fromServer(data.violations ?? [])]);
}

/** Map constraint id → the server's plain-words messages about it. */
export function messages(data) {
  const found = new Map();
  for (const v of data.violations ?? []) {
    if (!v.message) continue;
    const id = constraintOf(v);
    found.set(id, [...(found.get(id) ?? []), v.message]);
  }
  return found;
}
