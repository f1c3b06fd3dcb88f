// Helpers for building the page. User text goes in through textContent only, never as markup.

export const $ = (id) => document.getElementById(id);

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function avatar(name, color) {
  const node = element("span", "avatar", (name || "?").trim().charAt(0).toUpperCase() || "?");
  node.setAttribute("aria-hidden", "true");
  node.style.backgroundColor = color || "";
  return node;
}

let statusTimer = null;
export function showStatus(text) {
  const status = $("status");
  status.textContent = text;
  status.hidden = false;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => (status.hidden = true), 6000);
}

export function timeOf(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { day: "numeric", month: "short" });
}
