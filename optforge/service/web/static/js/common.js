// Shared by every page: the API token, API calls, the live event stream, formatting and chart set-up.
// Plain ES modules, no build step. Text from the server is always inserted as text (el() below), never as HTML.

const TOKEN_KEY = "optforge.token";
const ROOT = document.body.dataset.root || "";
export const AUTH_MODE = document.body.dataset.auth; // "open" or "token", as the server saw it

// ---- token -------------------------------------------------------------------------------------------

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** Whether the page can call the API: the server runs open, or the user saved a token. */
export function canCallApi() {
  return AUTH_MODE === "open" || token() !== "";
}

export function setupTokenForm(onChange) {
  const box = document.getElementById("token-box");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const status = document.getElementById("token-status");
  const show = () => {
    status.textContent = token()
      ? "A token is saved in this browser."
      : AUTH_MODE === "open"
        ? "This server runs open: no token needed."
        : "This server needs an API token (create one with `optforge token create`).";
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    localStorage.setItem(TOKEN_KEY, value);
    input.value = "";
    box.open = false;
    show();
    hideBanner();
    onChange();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    show();
    onChange();
  });
  if (!canCallApi()) {
    box.open = true;
    showBanner("Paste an API token (top right) to see your studies.");
  }
  show();
}

// ---- banner ------------------------------------------------------------------------------------------

export function showBanner(message) {
  const banner = document.getElementById("banner");
  banner.textContent = message;
  banner.hidden = false;
}

export function hideBanner() {
  document.getElementById("banner").hidden = true;
}

// ---- API ---------------------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** fetch() a JSON API path with the token; throws ApiError with the server's field-level message. */
export async function api(path, options = {}) {
  const response = await fetch(ROOT + path, {
    ...options,
    headers: { Accept: "application/json", ...authHeaders(), ...(options.headers || {}) },
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body.detail.map((d) => d.msg).join("; ");
    } catch {
      /* not the API's error shape: keep the status line */
    }
    if (response.status === 401) {
      document.getElementById("token-box").open = true;
      showBanner(`The server refused the token: ${message}`);
    }
    throw new ApiError(response.status, message);
  }
  return response.status === 204 ? null : response.json();
}

/**
 * Read a server-sent-events stream with fetch(), so the Authorization header travels (EventSource cannot
 * send one). Calls onEvent({event, id, data}) with data parsed from JSON. On a dropped connection it
 * reconnects after `retryMs` with ?after=<last id>, so no event is missed or repeated. Resolves when the
 * server ends the stream (the study finished) or `signal` aborts; rejects on a 4xx.
 */
export async function streamEvents(path, { after = 0, onEvent, signal, retryMs = 2000 }) {
  let last = after;
  while (!signal?.aborted) {
    try {
      const sep = path.includes("?") ? "&" : "?";
      const response = await fetch(`${ROOT}${path}${sep}after=${last}`, {
        headers: { Accept: "text/event-stream", ...authHeaders() },
        signal,
      });
      if (response.status >= 400 && response.status < 500) throw new ApiError(response.status, "stream refused");
      if (!response.ok) throw new Error(`stream answered ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = parseMessage(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (message) {
            if (message.id) last = Number(message.id);
            onEvent(message);
          }
        }
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (signal?.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }
}

function parseMessage(block) {
  let event = "message";
  let id = "";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // a keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  return { event, id, data: JSON.parse(data.join("\n")) };
}

// ---- timing ------------------------------------------------------------------------------------------

/** Calls fn() at most once per `ms`, after the last request (trailing): for bursts of live events. */
export function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

/** Calls fn() every `ms` while the tab is visible, and once at once when it becomes visible again. */
export function every(ms, fn) {
  setInterval(() => document.hidden || fn(), ms);
  document.addEventListener("visibilitychange", () => document.hidden || fn());
}

// ---- DOM and formatting ------------------------------------------------------------------------------

/** el("td", {class: "num"}, "text", child...): an element whose text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function fmtNum(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(2);
  return Number(value.toPrecision(digits)).toString();
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

export function statusBadge(status) {
  return el("span", { class: `badge status-${status}` }, status);
}

export function progressBar(done, total, label) {
  const fraction = total ? Math.min(1, done / total) : 0;
  return el(
    "div",
    {
      class: "progress",
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": 0,
      "aria-valuemax": total,
      "aria-valuenow": Math.min(done, total),
    },
    el("div", { class: "progress-fill", style: `width: ${(fraction * 100).toFixed(1)}%` }),
    el("span", { class: "progress-text" }, `${done} / ${total}`),
  );
}

// ---- charts ------------------------------------------------------------------------------------------

// Tableau 10: distinct at a glance and readable by most colour-blind viewers.
export const PALETTE = [
  "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

/** A colour per family, stable for the page's life: assigned in the order families are first seen. */
export function familyColors() {
  const assigned = new Map();
  return (family) => {
    if (!assigned.has(family)) assigned.set(family, PALETTE[assigned.size % PALETTE.length]);
    return assigned.get(family);
  };
}

/** An ECharts instance on #id that follows its container's size. */
export function chart(id) {
  const node = document.getElementById(id);
  const instance = echarts.init(node, null, { renderer: "canvas" });
  instance.setOption({ ...BASE_OPTION, series: [] }); // empty until data arrives, never option-less
  new ResizeObserver(() => instance.resize()).observe(node);
  return instance;
}

export const BASE_OPTION = {
  animation: false,
  textStyle: { fontFamily: "system-ui, -apple-system, 'Segoe UI', sans-serif" },
  grid: { left: 56, right: 20, top: 36, bottom: 44, containLabel: false },
  aria: { enabled: true },
};
