// One job: its fields, live progress, the event timeline, its command and log, and the actions an
// operator may take. Live through the job's event stream; a plain read whenever the stream is down.
"use strict";

const LOG_LINES = 200;
const jobId = new URLSearchParams(location.search).get("id") || "";
const jobPath = `/jobs/${encodeURIComponent(jobId)}`;
const seen = new Set();
const entries = []; // every history entry seen, in seq order: the attempts are read from it
let ended = false;
let following = false;
let logShown = "";
let promptShown = "";

// Which actions apply in which status (the decider has the last word: a refusal is shown).
const OUTCOMES = {
  JobCompleted: "completed", JobRetrying: "failed, retrying", JobFailed: "failed",
  JobTimedOut: "timed out", JobCanceled: "canceled",
};

const ACTIONS = {
  cancel: (s) => !TERMINAL.has(s) && s !== "new",
  pause: (s) => ["queued", "assigned", "running", "retrying"].includes(s),
  resume: (s) => s === "paused",
  retry: (s) => s === "failed" || s === "canceled",
  approve: (s) => s === "pending",
  deny: (s) => s === "pending",
};

function sleep(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

// ---- rendering ---------------------------------------------------------------------------------

function field(name, value) {
  if (value === null || value === undefined || value === "") return [];
  return [el("dt", {}, name), el("dd", { "data-field": name }, String(value))];
}

function resultsLine(results) {
  if (!results) return "";
  const parts = [`wall ${results.wall_s.toFixed(1)} s`, `${results.frames} frames`];
  if (results.encode_fps !== null && results.encode_fps !== undefined) parts.push(`fps ${results.encode_fps.toFixed(1)}`);
  if (results.speed !== null && results.speed !== undefined) parts.push(`speed ${results.speed.toFixed(2)}x`);
  if (results.output_bytes) parts.push(`out ${fmtBytes(results.output_bytes)}`);
  return parts.join(", ");
}

function renderFields(job) {
  const spec = job.spec || {};
  const labels = Object.entries(spec.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  fill(byId("fields"),
    field("status", job.status),
    field("scenario", spec.scenario), field("engine", spec.engine),
    field("input", spec.input), field("output", spec.output),
    field("duration", spec.duration_s === null || spec.duration_s === undefined ? "" : `${spec.duration_s} s`),
    field("queue", spec.queue), field("priority", spec.priority), field("labels", labels),
    field("agent", job.agent), field("gpu", job.gpu),
    field("attempt", job.attempt || ""), field("retries", `${job.retries} of ${spec.max_retries ?? "?"}`),
    field("submitted", fmtTime(job.submitted_at)), field("started", fmtTime(job.started_at)),
    field("finished", fmtTime(job.finished_at)),
    field("reason", job.reason), field("message", job.message),
    field("prompt", job.prompt || spec.approval_prompt), field("requested", job.requested),
    field("results", resultsLine(job.results)),
  );
}

function renderProgress(job, live) {
  const done = job.status === "completed" ? 100 : job.percent || 0;
  const percent = Math.max(0, Math.min(100, live ? live.percent : done));
  byId("progress-bar").value = percent;
  const parts = [`${percent.toFixed(1)} %`];
  if (live && live.fps !== null && live.fps !== undefined) parts.push(`${live.fps.toFixed(1)} fps`);
  if (live && live.speed !== null && live.speed !== undefined) parts.push(`${live.speed.toFixed(2)}x`);
  if (live && live.out_time_s !== null && live.out_time_s !== undefined) {
    const of = live.media_s ? ` of ${live.media_s.toFixed(1)} s` : "";
    parts.push(`${live.out_time_s.toFixed(1)} s${of}`);
  }
  if (live && live.paused) parts.push("paused");
  fill(byId("progress-text"), parts.join(" · "));
}

function renderActions(status) {
  for (const button of byId("actions").querySelectorAll("button[data-action]")) {
    button.disabled = !ACTIONS[button.dataset.action](status);
  }
}

function renderStatus(reply) {
  const job = reply.job;
  fill(byId("job-status"), statusBadge(job.status));
  renderFields(job);
  renderProgress(job, reply.live);
  renderActions(job.status);
  if (reply.command) fill(byId("command"), reply.command);
  else if (!byId("command").textContent) fill(byId("command"), "(not run yet)");
  loadLog(job);
  loadPrompt(job);
}

function addHistory(entry) {
  if (seen.has(entry.seq)) return;
  seen.add(entry.seq);
  const row = el("tr", { "data-seq": entry.seq, "data-type": entry.type, "data-testid": "event-row" },
    el("td", { class: "num" }, String(entry.seq)),
    el("td", { class: "time" }, fmtTime(entry.at)),
    el("td", {}, entry.writer),
    el("td", { class: "event-type" }, entry.type),
    el("td", {}, entry.changes),
    el("td", { class: "why" }, entry.detail),
  );
  const body = byId("timeline-body");
  const later = [...body.rows].find((other) => Number(other.dataset.seq) > entry.seq);
  body.insertBefore(row, later || null);
  const at = entries.findIndex((other) => other.seq > entry.seq);
  entries.splice(at < 0 ? entries.length : at, 0, entry);
  renderAttempts();
}

/** Each attempt from the history: where it ran, when, and how it ended (and why). */
function attemptsOf(list) {
  const found = new Map();
  let current = null;
  for (const entry of list) {
    const event = entry.event || {};
    if (entry.type === "JobAssigned") {
      const gpu = event.gpu === null || event.gpu === undefined ? "" : ` gpu ${event.gpu}`;
      current = { attempt: event.attempt, where: `${event.agent}${gpu}`, at: entry.at,
        outcome: "assigned", detail: "", done: false };
      found.set(event.attempt, current);
      continue;
    }
    const attempt = typeof event.attempt === "number" ? found.get(event.attempt) : current;
    if (!attempt || attempt.done) continue;
    if (entry.type === "JobStarted") attempt.outcome = "running";
    if (entry.type in OUTCOMES) {
      Object.assign(attempt, { outcome: OUTCOMES[entry.type], detail: entry.detail, done: true });
    }
  }
  return [...found.values()];
}

function renderAttempts() {
  const attempts = attemptsOf(entries);
  byId("attempts-section").hidden = !attempts.length;
  fill(byId("attempts-body"), attempts.map((a) => el("tr", { "data-attempt": a.attempt, "data-testid": "attempt-row" },
    el("td", { class: "num" }, String(a.attempt)),
    el("td", {}, a.where),
    el("td", { class: "time" }, fmtTime(a.at)),
    el("td", { class: "outcome" }, a.outcome),
    el("td", { class: "why" }, a.detail),
    el("td", {}, el("button", { type: "button", class: "quiet", onclick: () => showLog(a.attempt) }, "log")),
  )));
}

// ---- log and prompt ----------------------------------------------------------------------------

function tail(text, lines) {
  const all = text.split("\n");
  return all.length > lines ? all.slice(-lines).join("\n") : text;
}

async function loadLog(job, force) {
  const key = `${job.attempt}/${job.status}`;
  if (job.attempt < 1 || (key === logShown && !force)) {
    if (job.attempt < 1) fill(byId("log"), "(no attempt has run yet)");
    return;
  }
  logShown = key;
  loadCommand();
  await showLog(job.attempt);
}

/** One attempt's log, its last lines. */
async function showLog(attempt) {
  fill(byId("log-attempt"), `attempt ${attempt}`);
  try {
    const reply = await request("GET", `${jobPath}/logs${query({ attempt })}`);
    fill(byId("log"), tail(reply.log, LOG_LINES) || "(empty)");
  } catch (error) {
    fill(byId("log"), error.status === 404 ? "(no log stored yet)" : `(log unavailable: ${error.message})`);
  }
}

/** The attempt's command line: streamed states leave it out, the job's own document has it. */
async function loadCommand() {
  try {
    const reply = await request("GET", jobPath);
    if (reply.command) fill(byId("command"), reply.command);
  } catch (_) {
    // the next change of attempt or status asks again
  }
}

async function loadPrompt(job) {
  const form = byId("prompt-form");
  if (job.status !== "pending") {
    form.hidden = true;
    promptShown = "";
    return;
  }
  if (promptShown === `${job.status}/${job.prompt}`) return;
  promptShown = `${job.status}/${job.prompt}`;
  try {
    const reply = await request("GET", `${jobPath}/prompt`);
    fill(byId("prompt-text"), reply.prompt || "approve this job?");
    form.hidden = !reply.waiting;
  } catch (error) {
    showError(error);
  }
}

// ---- following ---------------------------------------------------------------------------------

function setFollowState(text) {
  fill(byId("follow-state"), text);
}

function onStreamEvent(kind, data) {
  if (kind === "history") addHistory(data);
  else if (kind === "status") renderStatus(data);
  else if (kind === "end") {
    renderStatus(data);
    ended = true;
  }
}

/** A plain read of status and history: the first paint, and whenever the stream is down. */
async function readOnce() {
  const [status, events] = await Promise.all([
    api("GET", jobPath), api("GET", `${jobPath}/events`),
  ]);
  events.forEach(addHistory);
  renderStatus(status);
  return status;
}

async function follow() {
  following = true;
  let failures = 0;
  while (!ended) {
    try {
      setFollowState("● live");
      await followStream(`${jobPath}/events`, onStreamEvent);
      failures = 0;
    } catch (error) {
      failures += 1;
      if (error.status === 404 || error.status === 403) {
        showError(error);
        break;
      }
      setFollowState(`reconnecting (${error.message})`);
      await readOnce().catch(() => null);
    }
    if (!ended) await sleep(Math.min(10000, 500 * 2 ** failures));
  }
  setFollowState(ended ? "ended" : "not following");
  following = false;
}

function ensureFollowing() {
  ended = false;
  if (!following) follow();
}

// ---- actions -----------------------------------------------------------------------------------

function decidedLine(decided) {
  const what = decided.message || decided.status || (decided.decided ? "done" : "sent");
  return `${decided.command}${decided.refused ? " refused" : ""}: ${what}`;
}

async function act(action, body) {
  clearError();
  showNotice("");
  try {
    const decided = await api("POST", `${jobPath}/${action}`, body);
    showNotice(decidedLine(decided));
    const status = await readOnce();
    if (!TERMINAL.has(status.job.status)) ensureFollowing();
  } catch (_) {
    // shown by `api`
  }
}

function setUpActions() {
  for (const button of byId("actions").querySelectorAll("button[data-action]")) {
    const action = button.dataset.action;
    button.disabled = true;
    button.addEventListener("click", () => {
      const answer = byId("answer").value.trim();
      act(action, action === "approve" || action === "deny" ? { answer } : undefined);
    });
  }
  byId("prompt-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("response", { answer: byId("prompt-answer").value, approve: true });
  });
  byId("log-refresh").addEventListener("click", () => {
    readOnce().then((status) => loadLog(status.job, true)).catch(() => null);
  });
}

// ---- the page ----------------------------------------------------------------------------------

async function start() {
  setUpPage(() => { readOnce().catch(() => null); ensureFollowing(); });
  setUpActions();
  if (!jobId) {
    showError(new Error("no job in the address: open job.html?id=<job>"));
    return;
  }
  document.title = `ffrtmp · job ${jobId}`;
  fill(byId("job-id"), jobId);
  try {
    const status = await readOnce();
    ended = TERMINAL.has(status.job.status);
    setFollowState(ended ? "ended" : "");
  } catch (error) {
    if (error.status === 404 || error.status === 401) return;
  }
  if (!ended) follow();
}

start();
