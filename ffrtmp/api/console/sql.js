// A read-only SQL box: the query goes to the projector's SQL service, the answer shows as a table.
"use strict";

function cellText(value) {
  if (value === null || value === undefined) return "∅";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function renderResult(result) {
  const table = byId("sql-result");
  fill(table,
    el("thead", {}, el("tr", {}, result.columns.map((name) => el("th", {}, name)))),
    el("tbody", {}, result.rows.map((row) => el("tr", {}, row.map((value) => (
      el("td", { class: typeof value === "number" ? "num" : null }, cellText(value))
    ))))),
  );
  const rows = `${result.rows.length} row${result.rows.length === 1 ? "" : "s"}`;
  fill(byId("sql-meta"),
    `${rows}${result.truncated ? " (truncated)" : ""} · projector at checkpoint ${result.checkpoint}`);
}

async function runSql(event) {
  if (event) event.preventDefault();
  clearError();
  const sql = byId("sql").value;
  const limit = Number(byId("sql-limit").value) || 100;
  byId("sql-run").disabled = true;
  try {
    renderResult(await api("POST", "/sql", { sql, limit }));
  } catch (_) {
    fill(byId("sql-meta"), "");
    fill(byId("sql-result"));
  } finally {
    byId("sql-run").disabled = false;
  }
}

setUpPage(null);
byId("sql-form").addEventListener("submit", runSql);
byId("sql").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) runSql(event);
});
