// The supervisor console: the live board plus agent actions over the websocket, and today's
// missed callers with call back (for those who may read call history). Buttons exist only for
// queues the user may act on (rendered by the server); the server checks again.

import { BoardPage, pageConfig } from "./lib/board-page.js";
import { fill, makeClock, parseTime, setData, setText } from "./lib/format.js";
import { MissedCallers } from "./lib/missed-callers.js";

const ACTION_TIMEOUT_MS = 20000;
// New figures from the call history mean new call records: read the missed callers again,
// once for a burst of snapshots.
const MISSED_AFTER_FIGURES_MS = 500;

/** The missed-callers panel, or null when the page has none (viewers). */
function missedCallers(config) {
  const root = document.querySelector('[data-f="missed-callers"]');
  if (!root || !config.missed) return null;
  const token = () => {
    const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  };
  return new MissedCallers({
    root,
    dialog: document.querySelector('[data-f="callback-dialog"]'),
    template: document.getElementById("missed-tpl"),
    config: config.missed,
    extensions: config.extensions,
    strings: config.strings,
    clock: makeClock(config.time_zone, document.documentElement.lang || undefined),
    csrfToken: token,
  });
}

function main() {
  const config = pageConfig();
  const s = config.strings;
  const container = document.querySelector('[data-f="queues"]');
  const dialog = document.querySelector('[data-f="confirm"]');
  const dialogText = dialog.querySelector('[data-f="confirm-text"]');
  const templates = {
    act: document.getElementById("agent-tpl-act"),
    view: document.getElementById("agent-tpl"),
  };
  const extensions = config.extensions || [];
  const pending = new Map(); // request_id -> {panel, ext, action, controls, timer}
  const optionSignature = new Map(); // queue -> members signature of its "add" list
  let sequence = 0;
  let confirming = null;

  function showResult(panel, text, outcome) {
    const el = panel.f.result;
    setText(el, text);
    setData(el, "outcome", outcome);
  }

  function describe(ext, action, message) {
    return fill(s.result, { ext, action: s.actions[action] || action, message });
  }

  function act(panel, ext, action, controls) {
    const requestId = `r${Date.now().toString(36)}-${++sequence}`;
    const sent = page.send({
      type: "action", request_id: requestId, action, queue: panel.queue.queue, extension: ext,
    });
    if (!sent) {
      showResult(panel, describe(ext, action, s.not_connected), "fail");
      return;
    }
    for (const control of controls) control.disabled = true;
    const timer = setTimeout(
      () => finish(requestId, false, s.no_answer), ACTION_TIMEOUT_MS,
    );
    pending.set(requestId, { panel, ext, action, controls, timer });
    showResult(panel, describe(ext, action, s.pending), "pending");
  }

  function finish(requestId, ok, message) {
    const entry = pending.get(requestId);
    if (!entry) return;
    pending.delete(requestId);
    clearTimeout(entry.timer);
    for (const control of entry.controls) control.disabled = false;
    showResult(entry.panel, describe(entry.ext, entry.action, message), ok ? "ok" : "fail");
  }

  function refreshAddOptions(panel) {
    const form = panel.f.add;
    if (!form) return;
    const members = new Set(panel.members.map((m) => m.extension));
    const signature = [...members].sort((a, b) => a - b).join(",");
    if (optionSignature.get(panel.queue.queue) === signature) return;
    optionSignature.set(panel.queue.queue, signature);
    const select = form.elements.extension;
    const keep = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const ext of extensions) {
      if (members.has(ext.extension)) continue;
      const label = `${ext.extension} — ${ext.name || "?"} (${ext.registered ? s.registered : s.not_registered})`;
      const option = new Option(label, String(ext.extension));
      select.add(option);
    }
    select.value = keep;
    if (select.value !== keep) select.value = "";
  }

  const missed = missedCallers(config);
  let figuresAt = null; // the newest `kpi.computed_at` seen in a snapshot (epoch ms)
  let missedTimer = null;

  /** Figures newer than any seen: refresh the missed callers (not for the painted ones). */
  function figuresPublished(snapshot, { painted = false } = {}) {
    const computed = parseTime(snapshot && snapshot.kpi ? snapshot.kpi.computed_at : null);
    if (!missed || computed === null || (figuresAt !== null && computed <= figuresAt)) return;
    figuresAt = computed;
    if (painted) return;
    clearTimeout(missedTimer);
    missedTimer = setTimeout(() => missed.refresh(), MISSED_AFTER_FIGURES_MS);
  }

  const page = new BoardPage({
    config,
    container,
    agentTemplateFor: (queue) => (queue.can_act ? templates.act : templates.view),
    decorate: (row, member) => {
      const pause = row.el.querySelector('[data-action="pause"]');
      const unpause = row.el.querySelector('[data-action="unpause"]');
      if (pause) pause.hidden = Boolean(member.paused);
      if (unpause) unpause.hidden = !member.paused;
    },
    onMessage: (message) => {
      if ((message.type === "action_result" || message.type === "error") && message.request_id) {
        finish(message.request_id, message.type === "action_result" && message.ok, message.message);
      } else if (message.type === "snapshot") {
        const panel = page.panels.get(message.queue);
        if (panel) refreshAddOptions(panel);
        figuresPublished(message.data);
      }
    },
  });

  container.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || button.type === "submit") return;
    const panelEl = button.closest("[data-queue]");
    const rowEl = button.closest("[data-ext]");
    const panel = panelEl && page.panels.get(Number(panelEl.dataset.queue));
    if (!panel || !rowEl) return;
    const ext = Number(rowEl.dataset.ext);
    const controls = [...rowEl.querySelectorAll("button[data-action]")];
    if (button.dataset.action === "remove") {
      const member = panel.members.find((m) => m.extension === ext);
      confirming = { panel, ext, controls };
      dialogText.textContent = fill(s.confirm_remove, {
        name: (member && member.name) || ext, ext, queue: panel.el.querySelector('[data-f="qname"]').textContent,
      });
      dialog.showModal();
      return;
    }
    act(panel, ext, button.dataset.action, controls);
  });

  container.addEventListener("submit", (event) => {
    const form = event.target.closest('[data-f="add"]');
    if (!form) return;
    event.preventDefault();
    const panel = page.panels.get(Number(form.closest("[data-queue]").dataset.queue));
    const ext = Number(form.elements.extension.value);
    if (!panel || !ext) return;
    act(panel, ext, "add", [...form.querySelectorAll("button, select")]);
  });

  dialog.addEventListener("close", () => {
    const target = confirming;
    confirming = null;
    if (target && dialog.returnValue === "ok") act(target.panel, target.ext, "remove", target.controls);
  });

  for (const snapshot of Object.values(config.snapshots)) figuresPublished(snapshot, { painted: true });
  page.start();
  for (const panel of page.panels.values()) refreshAddOptions(panel);
  if (missed) missed.start();
}

main();
