// Small DOM helpers shared by the views.

export const $ = (selector, root = document) => root.querySelector(selector);

/** h("td", {class: "x"}, "text", childNode) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child != null) el.append(child);
  return el;
}

let lastAnnouncement = "";

/** Say `text` through the polite live region (repeats are dropped). */
export function announce(text) {
  if (text === lastAnnouncement) return;
  lastAnnouncement = text;
  $("#announcer").textContent = text;
}

export function show(id) {
  for (const view of document.querySelectorAll("main > section")) view.hidden = view.id !== id;
}
