// Nodes: load, slots, running jobs, GPUs and heartbeat age (polled), with drain / quarantine / clear.
"use strict";

let nodesPoll = null;

function memoryText(node) {
  if (node.memory_used_bytes === null || node.memory_used_bytes === undefined) return "";
  const of = node.ram_bytes ? ` of ${fmtBytes(node.ram_bytes)}` : "";
  return `${fmtBytes(node.memory_used_bytes)}${of}`;
}

function gpuText(node) {
  const gpus = node.gpus || [];
  const beat = node.heartbeat;
  const live = new Map(((beat && beat.gpus) || []).map((g) => [g.index, g]));
  return gpus.map((name) => {
    const reading = live.get(Number(String(name).split(":")[0]));
    const extra = [];
    if (reading && reading.utilization_percent !== null && reading.utilization_percent !== undefined) {
      extra.push(`${reading.utilization_percent.toFixed(0)} %`);
    }
    if (reading && reading.encoder_sessions !== null && reading.encoder_sessions !== undefined) {
      extra.push(`${reading.encoder_sessions} NVENC`);
    }
    return extra.length ? `${name} (${extra.join(", ")})` : name;
  }).join("; ");
}

async function steer(node, action, reasonInput) {
  clearError();
  showNotice("");
  const body = action === "quarantine" ? { reason: reasonInput.value.trim() } : undefined;
  if (action === "quarantine" && !body.reason) {
    showError(new Error(`say why ${node} is quarantined (the reason field beside the button)`));
    reasonInput.focus();
    return;
  }
  try {
    const reply = await api("POST", `/nodes/${encodeURIComponent(node)}/${action}`, body);
    showNotice(reply.message);
    nodesPoll.now();
  } catch (_) {
    // shown by `api`
  }
}

function steerCell(node) {
  const reason = el("input", { size: 12, placeholder: "reason", "data-testid": "quarantine-reason" });
  const button = (action) => el("button", {
    type: "button", "data-action": action, onclick: () => steer(node.id, action, reason),
  }, action);
  return el("td", { class: "steer" }, button("drain"), button("clear"), reason, button("quarantine"));
}

function nodeRow(node) {
  const running = node.running || [];
  const status = node.quarantine_reason ? `${node.status}: ${node.quarantine_reason}` : node.status;
  return el("tr", { "data-node": node.id, "data-testid": "node-row" },
    el("td", {}, node.id),
    el("td", {}, el("span", { class: `status status-${node.status}`, "data-testid": "status" }, status)),
    el("td", {}, node.hostname),
    el("td", { class: "num" }, fmtNumber(node.cpu_percent, 0, " %")),
    el("td", {}, memoryText(node)),
    el("td", { class: "num" }, `${running.length}/${node.slots}`),
    el("td", {}, running.map((job, i) => [i ? " " : "", jobLink(job)])),
    el("td", {}, gpuText(node)),
    el("td", {}, fmtAge(node.last_heartbeat_at)),
    steerCell(node),
  );
}

/** Keep a row whose reason field is being typed in; redraw the others. */
function renderNodes(nodes) {
  const body = byId("nodes-body");
  const active = document.activeElement;
  const typing = active && active.matches("input") ? active.closest("tr[data-node]") : null;
  if (!nodes.length) {
    fill(body, el("tr", {}, el("td", { colspan: 10, class: "empty" }, "no nodes have registered")));
    return;
  }
  fill(body, nodes.map((node) => (
    typing && typing.dataset.node === node.id ? typing : nodeRow(node)
  )));
  if (typing) typing.querySelector("input").focus();
}

async function loadNodes() {
  renderNodes(await api("GET", "/nodes"));
}

setUpPage(() => nodesPoll.now());
nodesPoll = poll(loadNodes);
