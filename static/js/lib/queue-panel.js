// One queue on a page (TV tile + agent grid, or console card + agent table), updated in place:
// agent rows are keyed by extension and reused, so memory stays flat however long it runs.

import {
  dash, duration, meanDuration, met, needed, parseTime, percent, setData, setText,
  staffingBasis, takingCalls,
} from "./format.js";

const LEVEL_RANK = { ok: 0, amber: 1, red: 2 };

function fields(root) {
  const found = {};
  for (const el of root.querySelectorAll("[data-f]")) {
    if (!(el.dataset.f in found)) found[el.dataset.f] = el;
  }
  return found;
}

export function levelFor(value, amber, red) {
  if (red && value >= red) return "red";
  if (amber && value >= amber) return "amber";
  return "ok";
}

export class QueuePanel {
  /**
   * @param {HTMLElement} el  the queue's section ([data-queue])
   * @param {object} queue  {queue, name, display_name, thresholds, can_act}
   * @param {object} options  {strings, states: [[state, word]...] in count order,
   *   takingCalls: the states of members who take calls, agentTemplate: HTMLTemplateElement,
   *   decorate(row, member)}
   */
  constructor(el, queue, { strings, states, takingCalls, agentTemplate, decorate }) {
    this.el = el;
    this.queue = queue;
    this.strings = strings;
    this.states = states.map(([state]) => state);
    this.takingCalls = takingCalls;
    this.stateWords = Object.fromEntries(states);
    this.agentTemplate = agentTemplate;
    this.decorate = decorate || (() => {});
    this.f = fields(el);
    this.rows = new Map(); // extension -> {el, f, member}
    this.snapshot = null;
    this.level = "ok";
    // Rows the server rendered for the first paint are adopted, not rebuilt.
    for (const rowEl of this.f.agents ? this.f.agents.querySelectorAll("[data-ext]") : []) {
      const ext = Number(rowEl.dataset.ext);
      if (Number.isFinite(ext) && rowEl.dataset.ext !== "") {
        this.rows.set(ext, { el: rowEl, f: fields(rowEl), member: null });
      }
    }
  }

  get members() {
    return this.snapshot ? this.snapshot.members : [];
  }

  render(snapshot) {
    this.snapshot = snapshot;
    this.el.removeAttribute("data-empty");
    if (!this.queue.display_name && snapshot.name) setText(this.f.qname, snapshot.name);
    const counts = snapshot.counts || {};
    setText(this.f.waiting, String(counts.waiting ?? 0));
    for (const state of this.states) setText(this.f[`c-${state}`], String(counts[state] ?? 0));
    // Today's figures, as the call history computed them (null until published).
    const kpi = snapshot.kpi || {};
    setText(this.f.answered, dash(kpi.answered_today));
    setText(this.f.missed, dash(kpi.missed_today));
    setText(this.f.sl, percent(kpi.service_level));
    setData(this.f.sl, "met", met(kpi));
    // The target the service level was computed for.
    const target = kpi.sl_target_seconds;
    setText(this.f["sl-target"], dash(target));
    if (this.f["sl-t"]) this.f["sl-t"].hidden = !target;
    setText(this.f.asa, meanDuration(kpi.asa));
    setText(this.f.abandon, percent(kpi.abandon_rate));
    setText(this.f.needed, needed(snapshot.staffing));
    setText(this.f.taking, takingCalls(snapshot.counts, this.takingCalls));
    const basis = staffingBasis(snapshot.staffing, this.strings.staffing);
    if (this.f.staffing && this.f.staffing.title !== basis) this.f.staffing.title = basis;
    this.#renderAgents(snapshot.members || []);
  }

  #renderAgents(members) {
    const list = this.f.agents;
    if (!list) return;
    const sorted = [...members].sort((a, b) => a.extension - b.extension);
    const seen = new Set();
    let cursor = list.firstElementChild;
    for (const member of sorted) {
      seen.add(member.extension);
      let row = this.rows.get(member.extension);
      if (!row) {
        const el = this.agentTemplate.content.firstElementChild.cloneNode(true);
        row = { el, f: fields(el), member: null };
        this.rows.set(member.extension, row);
      }
      this.#fillRow(row, member);
      if (row.el === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        list.insertBefore(row.el, cursor);
      }
    }
    for (const [ext, row] of this.rows) {
      if (!seen.has(ext)) {
        row.el.remove();
        this.rows.delete(ext);
      }
    }
  }

  #fillRow(row, member) {
    row.member = member;
    row.since = parseTime(member.state_since);
    setData(row.el, "ext", String(member.extension));
    setData(row.el, "state", member.state);
    setText(row.f.name, member.name || String(member.extension));
    setText(row.f.ext, String(member.extension));
    setText(row.f.state, this.stateWords[member.state] || member.state);
    setText(row.f.calls, dash(member.answered));
    setText(row.f.talk, duration(member.talk_seconds ?? -1));
    this.decorate(row, member);
  }

  /** Longest current wait in seconds at `now` (ms), ticking between snapshots. */
  longestWait(now) {
    const snap = this.snapshot;
    if (!snap || !snap.counts || !snap.counts.waiting) return 0;
    const since = parseTime(snap.longest_wait_since);
    if (since !== null) return Math.max(0, (now - since) / 1000);
    const fetched = parseTime(snap.fetched && snap.fetched.queue_status);
    const base = snap.longest_wait || 0;
    return fetched === null ? base : base + Math.max(0, (now - fetched) / 1000);
  }

  /** Advance the ticking values; returns the queue's alert level ("ok" | "amber" | "red"). */
  tick(now) {
    if (!this.snapshot) return "ok";
    const wait = this.longestWait(now);
    setText(this.f.longest, duration(wait));
    for (const row of this.rows.values()) {
      setText(row.f.time, row.since === null ? "—" : duration((now - row.since) / 1000));
    }
    const t = this.queue.thresholds;
    const waiting = this.snapshot.counts ? this.snapshot.counts.waiting || 0 : 0;
    const byCount = levelFor(waiting, t.waiting_amber, t.waiting_red);
    const byWait = levelFor(wait, t.wait_amber, t.wait_red);
    const level = LEVEL_RANK[byCount] >= LEVEL_RANK[byWait] ? byCount : byWait;
    this.level = level;
    setData(this.el, "level", level);
    setData(this.el.querySelector('[data-kpi="waiting"]'), "level", byCount);
    setData(this.el.querySelector('[data-kpi="wait"]'), "level", byWait);
    this.el.classList.toggle("flash", level === "red" && Boolean(t.flash));
    return level;
  }
}
