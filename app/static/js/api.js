// Thin JSON client of the Timetabler HTTP API; every failure becomes an ApiError
// carrying the server's one-line `detail`, never a stack trace.

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

const listeners = new Set();

/** Called with no argument whenever the server answers 401 (session gone). */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

async function readError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy page, a dropped connection): fall back to the status text.
  }
  const code = body?.error ?? response.statusText;
  const detail = body?.detail ?? `The server answered ${response.status} ${response.statusText}.`;
  return new ApiError(response.status, code, detail);
}

export async function request(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "offline", "The server cannot be reached.");
  }
  if (!response.ok) {
    const error = await readError(response);
    if (response.status === 401 && path !== "/api/session") listeners.forEach((fn) => fn());
    throw error;
  }
  if (response.status === 204) return null;
  return response.json();
}

export const api = {
  login: (token) => request("POST", "/api/session", { token }),
  loginWithCode: (code) => request("POST", "/api/session", { code }),
  logout: () => request("DELETE", "/api/session"),
  jobs: () => request("GET", "/api/jobs?limit=50"),
  job: (id) => request("GET", `/api/jobs/${encodeURIComponent(id)}`),
  cancel: (id) => request("DELETE", `/api/jobs/${encodeURIComponent(id)}`),
  samples: () => request("GET", "/api/samples"),
  submit: (body) => request("POST", "/api/jobs", body),
  timetable: (id) => request("GET", timetableUrl(id, "json")),
};

export function timetableUrl(id, format) {
  return `/api/jobs/${encodeURIComponent(id)}/timetable?format=${format}`;
}

export function eventsUrl(id) {
  return `/api/jobs/${encodeURIComponent(id)}/events`;
}
