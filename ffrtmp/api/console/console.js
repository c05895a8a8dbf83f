// The ffrtmp console's shared code: the nav bar, the one door to the API (`api`), the one place
// errors show, the token prompt, a reader of server-sent events over `fetch`, and DOM helpers.
//
// No build step: a classic script every page loads before its own. Everything put in the DOM goes
// through `el` / `textContent` (job ids, labels, messages and logs are user input): never
// innerHTML with data.
"use strict";

// Relative to the pages, so that a proxy may serve the console and API under a path of its own.
const API_ROOT = new URL("api/v1", document.baseURI).pathname;
const TOKEN_KEY = "ffrtmp.token";
const POLL_MS = 2000;
const STATUSES = [
  "pending", "queued", "assigned", "running", "paused", "retrying",
  "completed", "failed", "canceled", "rejected",
];
const TERMINAL = new Set(["completed", "failed", "canceled", "rejected"]);

/** An error the API answered (or a failure to reach it), with the message a person can act on. */
class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || "";
  }
}

// ---- DOM helpers -------------------------------------------------------------------------------

/** A new element; `attrs` are attributes (or `on*` listeners), `children` nodes or text. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's children with these. */
function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

function byId(id) {
  return document.getElementById(id);
}

// ---- words for numbers and times ---------------------------------------------------------------

function fmtTime(unixSeconds) {
  if (!unixSeconds) return "";
  const at = new Date(unixSeconds * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

function fmtAge(unixSeconds) {
  if (!unixSeconds) return "never";
  const s = Math.max(0, Date.now() / 1000 - unixSeconds);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function fmtNumber(value, digits, suffix) {
  return value === null || value === undefined ? "" : `${Number(value).toFixed(digits)}${suffix}`;
}

function statusBadge(status) {
  return el("span", { class: `status status-${status}`, "data-testid": "status" }, status);
}

function jobLink(id) {
  return el("a", { href: `job.html?id=${encodeURIComponent(id)}`, class: "job-id" }, id);
}

// ---- the error area and notices ----------------------------------------------------------------

let shownStatus = null; // the HTTP status of the error shown (0: the API did not answer)

/** Show an error in the page's one error area (its `message` only, as text). */
function showError(error) {
  const box = byId("error");
  if (!box) return error;
  const text = error instanceof Error ? error.message : String(error);
  fill(byId("error-text"), text);
  box.hidden = false;
  shownStatus = error instanceof ApiError ? error.status : null;
  return error;
}

function clearError() {
  const box = byId("error");
  if (box) box.hidden = true;
  shownStatus = null;
}

/** A line saying what an action did, in the page's notice area. */
function showNotice(text) {
  const box = byId("notice");
  if (!box) return;
  fill(box, text);
  box.hidden = !text;
}

// ---- the API -----------------------------------------------------------------------------------

function authHeaders(headers, token) {
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

/**
 * The error of a failed reply. A 401 asks for a token, unless the token changed while the
 * request was out: that error is stale, and not shown.
 */
async function failure(reply, token) {
  const error = await errorOf(reply);
  if (reply.status === 401 && token !== sessionStorage.getItem(TOKEN_KEY)) error.stale = true;
  else if (reply.status === 401) askToken(error.message);
  return error;
}

/** A reply came: an error that said the API was unreachable or wanted a token is over. */
function answered() {
  if (shownStatus === 0 || shownStatus === 401) clearError();
}

async function errorOf(reply) {
  let body = null;
  try {
    body = await reply.json();
  } catch (_) {
    // not JSON: a proxy's page, say; the status speaks for it
  }
  const err = body && body.error;
  if (err && err.message) return new ApiError(reply.status, err.message, err.field);
  return new ApiError(reply.status, `${reply.status} ${reply.statusText || "error"}`.trim());
}

/**
 * The one door to the API: `api("POST", "/jobs", spec)`. Adds the stored token; a 401 asks for
 * one; any other error is shown in the error area and thrown as an ApiError.
 */
async function api(method, path, body) {
  try {
    return await request(method, path, body);
  } catch (error) {
    if (!error.stale) showError(error);
    throw error;
  }
}

/** `api` for an answer the page expects may fail (a log not written yet): thrown, not shown. */
async function request(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = authHeaders({ Accept: "application/json" }, token);
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let reply;
  try {
    reply = await fetch(API_ROOT + path, init);
  } catch (err) {
    throw new ApiError(0, `the API did not answer: ${err.message}`);
  }
  if (!reply.ok) throw await failure(reply, token);
  answered();
  return reply.status === 204 ? null : reply.json();
}

/** Query string from an object; arrays repeat the key, empty values are left out. */
function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const one of [].concat(value)) {
      if (one !== "" && one !== null && one !== undefined) q.append(key, one);
    }
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

// ---- server-sent events over fetch (EventSource cannot send the Authorization header) ---------

/** A parser fed text chunks; calls `onEvent({event, data, id})` at each blank line. */
function sseParser(onEvent) {
  let buffer = "";
  let event = "";
  let data = [];
  let id = null;
  function line(raw) {
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (text === "") {
      if (data.length) onEvent({ event: event || "message", data: data.join("\n"), id });
      event = "";
      data = [];
      return;
    }
    if (text.startsWith(":")) return; // a comment: keep-alive
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  return {
    push(chunk) {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      lines.forEach(line);
    },
    end() {
      if (buffer) line(buffer);
      line("");
      buffer = "";
    },
  };
}

/** Follow an event stream until the server closes it; each event's data parsed as JSON. */
async function followStream(path, onEvent, signal) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = authHeaders({ Accept: "text/event-stream" }, token);
  const reply = await fetch(API_ROOT + path, { headers, signal });
  if (!reply.ok) throw await failure(reply, token);
  answered();
  const parser = sseParser((message) => onEvent(message.event, JSON.parse(message.data)));
  const reader = reply.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(decoder.decode(value, { stream: true }));
  }
  parser.push(decoder.decode());
  parser.end();
}

// ---- polling -----------------------------------------------------------------------------------

/** Run `load` now and every POLL_MS after it settles; `poll.now()` runs it again at once. */
function poll(load) {
  let timer = null;
  let running = false;
  let again = false;
  async function tick() {
    clearTimeout(timer);
    if (running) { again = true; return; }
    running = true;
    try {
      await load();
    } catch (_) {
      // shown in the error area by `api`; the next tick tries again
    } finally {
      running = false;
      timer = setTimeout(tick, again ? 0 : POLL_MS);
      again = false;
    }
  }
  tick();
  return { now: tick };
}

// ---- the nav bar and the token prompt ---------------------------------------------------------

let onTokenChange = () => location.reload();

function askToken(why) {
  const form = byId("token-form");
  if (!form) return;
  fill(byId("token-why"), why || "This farm asks for a token.");
  form.hidden = false;
  byId("token-input").focus();
}

function saveToken(event) {
  event.preventDefault();
  const value = byId("token-input").value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  byId("token-input").value = "";
  byId("token-form").hidden = true;
  clearError();
  onTokenChange();
}

function navBar() {
  const here = location.pathname.split("/").pop() || "index.html";
  const link = (href, text) =>
    el("a", { href, class: here === href ? "here" : null, "data-testid": `nav-${text.toLowerCase()}` }, text);
  const tokenButton = el("button", {
    type: "button", id: "token-button", class: "quiet",
    onclick: () => askToken("Paste a bearer token (kept for this tab only)."),
  }, "token");
  const tokenForm = el("form", { id: "token-form", hidden: true, onsubmit: saveToken },
    el("span", { id: "token-why" }),
    el("input", { id: "token-input", type: "password", autocomplete: "off", placeholder: "token" }),
    el("button", { type: "submit" }, "use"),
  );
  return el("nav", { id: "nav" },
    el("span", { class: "brand" }, "ffrtmp"),
    link("index.html", "Jobs"), link("nodes.html", "Nodes"), link("sql.html", "SQL"),
    el("span", { class: "spacer" }), tokenButton, tokenForm,
  );
}

function errorArea() {
  return el("div", { id: "error", role: "alert", "data-testid": "error", hidden: true },
    el("span", { id: "error-text" }),
    el("button", { type: "button", class: "quiet", "aria-label": "dismiss", onclick: clearError }, "×"),
  );
}

/** Every page: the nav bar and the error area above its `<main>`; `refresh` runs on a new token. */
function setUpPage(refresh) {
  if (refresh) onTokenChange = refresh;
  document.body.prepend(navBar(), errorArea());
}
