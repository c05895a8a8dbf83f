// Jobs: the summary cards, the filtered job table (polled), and the submit form.
"use strict";

const PAGE_SIZE = 50;
let offset = 0;
let jobsPoll = null;

// ---- filters (kept in the address, so a filtered view can be shared) --------------------------

function setUpFilters() {
  const box = byId("filter-status");
  const chosen = new URLSearchParams(location.search);
  for (const status of STATUSES) {
    const checked = chosen.getAll("status").includes(status);
    box.append(el("label", { class: "check" },
      el("input", { type: "checkbox", name: "status", value: status, checked }), status));
  }
  for (const name of ["queue", "priority", "agent", "since"]) {
    const value = chosen.get(name);
    if (value !== null) byId(`filter-${name}`).value = value;
  }
  const form = byId("filters");
  form.addEventListener("change", filtersChanged);
  form.addEventListener("submit", (event) => { event.preventDefault(); filtersChanged(); });
}

function filters() {
  const form = byId("filters");
  return {
    status: [...form.querySelectorAll("input[name=status]:checked")].map((box) => box.value),
    queue: form.elements.queue.value,
    priority: form.elements.priority.value,
    agent: form.elements.agent.value.trim(),
    since: form.elements.since.value.trim(),
  };
}

function filtersChanged() {
  offset = 0;
  history.replaceState(null, "", location.pathname + query(filters()));
  jobsPoll.now();
}

// ---- the table and the summary -----------------------------------------------------------------

function progressCell(row) {
  const percent = Math.max(0, Math.min(100, row.percent || 0));
  return el("td", { class: "progress-cell" },
    el("progress", { max: 100, value: percent }), ` ${percent.toFixed(0)} %`);
}

function jobRow(row) {
  const why = row.reason ? `${row.reason}${row.message ? `: ${row.message}` : ""}` : row.message;
  return el("tr", { "data-job": row.id, "data-testid": "job-row" },
    el("td", {}, jobLink(row.id)),
    el("td", {}, statusBadge(row.status)),
    el("td", {}, row.scenario),
    el("td", {}, row.queue),
    el("td", {}, row.priority),
    el("td", {}, row.agent),
    el("td", { class: "num" }, row.attempt ? String(row.attempt) : ""),
    progressCell(row),
    el("td", { class: "time" }, fmtTime(row.submitted_at)),
    el("td", { class: "time" }, fmtTime(row.finished_at)),
    el("td", { class: "why" }, why),
  );
}

function renderJobs(page) {
  const body = byId("jobs-body");
  if (!page.rows.length) {
    fill(body, el("tr", {}, el("td", { colspan: 11, class: "empty" }, "no jobs match")));
  } else {
    fill(body, page.rows.map(jobRow));
  }
  const last = offset + page.rows.length;
  const of = page.matching === page.total ? `${page.total}` : `${page.matching} matching, ${page.total} in all`;
  const range = page.rows.length ? `${offset + 1}–${last} of ${of}` : `0 of ${of}`;
  fill(byId("jobs-meta"), `${range} · ${page.source}${page.truncated ? " · truncated" : ""}`);
  byId("prev-page").disabled = offset === 0;
  byId("next-page").disabled = last >= page.matching;
}

function card(title, testid, entries) {
  return el("div", { class: "card", "data-testid": testid },
    el("h3", {}, title),
    el("dl", {}, entries.map(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))])),
  );
}

function renderSummary(summary) {
  const byStatus = Object.entries(summary.jobs_by_status || {});
  const byQueue = Object.entries(summary.queued_by_queue || {});
  fill(byId("summary"),
    card("Jobs", "summary-jobs", byStatus.length ? byStatus : [["none", 0]]),
    card("Queued", "summary-queues", byQueue.length ? byQueue : [["none", 0]]),
    card("Last hour", "summary-throughput", [
      ["completed", summary.completed_last_hour], ["failed", summary.failed_last_hour],
    ]),
    card("Nodes", "summary-nodes", [["online", summary.nodes_online], ["total", summary.nodes_total]]),
  );
}

async function loadJobs() {
  const params = { ...filters(), limit: PAGE_SIZE, offset };
  const [page, summary] = await Promise.allSettled([
    api("GET", `/jobs${query(params)}`), api("GET", "/summary"),
  ]);
  if (page.status === "fulfilled") renderJobs(page.value);
  if (summary.status === "fulfilled") renderSummary(summary.value);
}

// ---- submitting --------------------------------------------------------------------------------

function parseLabels(text) {
  const labels = {};
  for (const part of text.split(",")) {
    if (!part.trim()) continue;
    const eq = part.indexOf("=");
    if (eq < 0) throw new ApiError(422, `label "${part.trim()}" is not key=value`, "labels");
    labels[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return labels;
}

function specOf(form) {
  const f = form.elements;
  const spec = {
    scenario: f.scenario.value.trim(), input: f.input.value.trim(), output: f.output.value.trim(),
    queue: f.queue.value, priority: f.priority.value,
  };
  if (f.duration_s.value !== "") spec.duration_s = Number(f.duration_s.value);
  if (f.approval_required.checked) spec.approval_required = true;
  if (f.approval_prompt.value.trim()) spec.approval_prompt = f.approval_prompt.value.trim();
  const labels = parseLabels(f.labels.value);
  if (Object.keys(labels).length) spec.labels = labels;
  if (f.id.value.trim()) spec.id = f.id.value.trim();
  return spec;
}

/** Mark the form field a 422 named: `labels: value of 'x'` names labels, `job id` names id. */
function markField(form, field) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const words = (field || "").split(/[:\s]+/).filter(Boolean);
  const input = [field, words[0], words[words.length - 1]]
    .map((name) => name && form.elements.namedItem(name))
    .find((found) => found && found.setAttribute);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

function submitted(reply) {
  const job = reply.job;
  const decision = reply.decision;
  if (!decision) {
    return showNotice(el("span", {}, "job ", jobLink(job.job), ` already exists (${job.status})`));
  }
  const outcome = decision.message || decision.status || job.status;
  showNotice(el("span", { "data-job": job.job }, "submitted ", jobLink(job.job), `: ${outcome}`));
}

async function submitJob(event) {
  event.preventDefault();
  const form = event.target;
  clearError();
  showNotice("");
  markField(form, "");
  byId("submit-button").disabled = true;
  try {
    submitted(await api("POST", "/jobs", specOf(form)));
    jobsPoll.now();
  } catch (error) {
    if (error instanceof ApiError) {
      markField(form, error.field);
      showError(error);
    }
  } finally {
    byId("submit-button").disabled = false;
  }
}

// ---- the page ----------------------------------------------------------------------------------

function start() {
  setUpPage(() => jobsPoll.now());
  setUpFilters();
  byId("prev-page").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE_SIZE);
    jobsPoll.now();
  });
  byId("next-page").addEventListener("click", () => {
    offset += PAGE_SIZE;
    jobsPoll.now();
  });
  byId("submit-form").addEventListener("submit", submitJob);
  jobsPoll = poll(loadJobs);
}

start();
