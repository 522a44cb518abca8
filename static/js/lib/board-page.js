// What the TV board and the console share: the page model (snapshots by queue, highest version
// wins), the live connection, the status banners (PBX, connection, data age) and the one-second
// tick. Page modules add layout (TV rotation, sound) or actions (console).

import { LiveConnection } from "./connection.js";
import { fill, makeClock, parseTime, setText } from "./format.js";
import { QueuePanel } from "./queue-panel.js";

export class BoardPage {
  /**
   * @param {object} options
   * @param {object} options.config  the page-config json_script
   * @param {HTMLElement} options.container  where queue panels live
   * @param {(queue: object) => HTMLTemplateElement} options.agentTemplateFor
   * @param {(row, member, panel) => void} [options.decorate]
   * @param {(message: object) => void} [options.onMessage]  page-specific messages
   * @param {() => void} [options.onLayout]  the set of panels changed
   * @param {(now: number) => void} [options.onTick]
   */
  constructor({ config, container, agentTemplateFor, decorate, onMessage, onLayout, onTick }) {
    this.config = config;
    this.strings = config.strings;
    this.container = container;
    this.agentTemplateFor = agentTemplateFor;
    this.decorate = decorate;
    this.onMessage = onMessage || (() => {});
    this.onLayout = onLayout || (() => {});
    this.onTick = onTick || (() => {});
    this.clock = makeClock(config.time_zone, document.documentElement.lang || undefined);
    this.queueConfig = new Map(config.queues.map((q) => [q.queue, q]));
    this.panels = new Map(); // queue -> QueuePanel, in display order
    this.canAct = new Set(config.queues.filter((q) => q.can_act).map((q) => q.queue));
    this.versions = new Map(); // queue -> highest snapshot version seen
    this.pbx = config.pbx;
    this.freshAt = parseTime(config.fresh_at);
    this.skew = 0; // server clock - browser clock, ms
    this.conn = "connecting";
    this.connSince = Date.now();
    this.closedCode = null;
    this.banner = {
      pbx: document.querySelector('[data-banner="pbx"]'),
      conn: document.querySelector('[data-banner="conn"]'),
      age: document.querySelector('[data-banner="age"]'),
    };
    this.clockEl = document.querySelector('[data-f="clock"]');
  }

  now() {
    return Date.now() + this.skew;
  }

  start() {
    for (const el of this.container.querySelectorAll("[data-queue]")) {
      const queue = this.queueConfig.get(Number(el.dataset.queue));
      if (queue) this.#adopt(el, queue);
    }
    for (const [queue, snapshot] of Object.entries(this.config.snapshots)) {
      this.#snapshot(Number(queue), snapshot.version, snapshot);
    }
    this.onLayout();
    this.tick();
    setInterval(() => this.tick(), 1000);
    this.connection = new LiveConnection({
      path: this.config.ws_path,
      heartbeat: this.config.heartbeat,
      onMessage: (message) => this.#message(message),
      onStatus: (status, detail) => this.#status(status, detail),
    });
    this.connection.start();
  }

  send(message) {
    return this.connection.send(message);
  }

  #adopt(el, queue) {
    const panel = new QueuePanel(el, queue, {
      strings: this.strings,
      states: this.config.states,
      takingCalls: this.config.taking_calls,
      agentTemplate: this.agentTemplateFor(queue),
      decorate: this.decorate ? (row, member) => this.decorate(row, member, panel) : undefined,
    });
    this.panels.set(queue.queue, panel);
    return panel;
  }

  /** The server says which queues this page gets: add new ones, drop the others. */
  #subscribe(queues) {
    const wanted = new Set(queues);
    let changed = false;
    for (const [queue, panel] of this.panels) {
      if (!wanted.has(queue)) {
        panel.el.remove();
        this.panels.delete(queue);
        this.versions.delete(queue);
        changed = true;
      }
    }
    for (const queue of queues) {
      if (this.panels.has(queue)) continue;
      const config = this.queueConfig.get(queue) || {
        queue, name: String(queue), display_name: "", thresholds: this.config.thresholds, can_act: false,
      };
      // A queue that appeared after the page was rendered: the server says (hello, queues)
      // whether this user may act on it; the console has a panel template with controls.
      const actTemplate = document.getElementById("queue-tpl-act");
      config.can_act = Boolean(actTemplate) && this.canAct.has(queue);
      const template = config.can_act ? actTemplate : document.getElementById("queue-tpl");
      const el = template.content.firstElementChild.cloneNode(true);
      el.dataset.queue = String(queue);
      this.queueConfig.set(queue, config);
      el.querySelector('[data-f="qname"]').textContent = config.name;
      el.querySelector(".q-num").textContent = String(queue);
      const select = el.querySelector('select[name="extension"]');
      if (select) {
        select.id = `add-${queue}`;
        const label = el.querySelector("label[for]");
        if (label) label.htmlFor = select.id;
      }
      this.container.appendChild(el);
      this.#adopt(el, config);
      changed = true;
    }
    const empty = this.container.querySelector('[data-f="empty"]');
    if (empty) empty.hidden = this.panels.size > 0;
    if (changed) this.onLayout();
  }

  #snapshot(queue, version, data) {
    if (!data) return;
    if (!this.panels.has(queue)) {
      // The server sends a socket only the queues it may show. A queue that appeared on the
      // PBX after `hello` (or a board opened before the first poll) arrives this way: give it
      // a panel, so a TV that runs for weeks picks up new queues without a reload.
      this.#subscribe([...this.panels.keys(), queue]);
    }
    const panel = this.panels.get(queue);
    const known = this.versions.get(queue);
    if (known !== undefined && version < known) return; // an older push arriving late
    this.versions.set(queue, version);
    panel.render(data);
    panel.tick(this.now());
  }

  #serverTime(iso) {
    const t = parseTime(iso);
    if (t !== null) this.skew = t - Date.now();
  }

  #message(message) {
    switch (message.type) {
      case "hello":
        this.#serverTime(message.server_time);
        // A new connection sends every snapshot as it is now. If the server's Redis was
        // wiped, its versions start again from 1: forget ours so the board cannot stick.
        this.versions.clear();
        this.canAct = new Set(message.can_act || []);
        this.#subscribe(message.queues || []);
        break;
      case "queues":
        // New queues on the PBX for a page that shows all queues.
        this.canAct = new Set(message.can_act || []);
        this.#subscribe(message.queues || []);
        break;
      case "snapshot":
        this.#snapshot(message.queue, message.version, message.data);
        break;
      case "pbx":
        this.pbx = message.data;
        break;
      case "heartbeat":
        this.#serverTime(message.server_time);
        // null = no successful fetch in the server's memory: keep what the page already knew.
        this.freshAt = parseTime(message.fresh_at) ?? this.freshAt;
        break;
      default:
        break;
    }
    this.onMessage(message);
    this.#banners();
  }

  #status(status, detail) {
    if (status !== this.conn) this.connSince = Date.now();
    this.conn = status;
    this.closedCode = status === "closed" ? detail.code : null;
    document.body.dataset.conn = status;
    this.#banners();
  }

  /** When the data on screen was last known to be true (ms), or null. */
  dataTime() {
    let newest = this.freshAt;
    for (const panel of this.panels.values()) {
      const fetched = panel.snapshot && panel.snapshot.fetched;
      const t = parseTime(fetched && fetched.queue_status);
      if (t !== null && (newest === null || t > newest)) newest = t;
    }
    return newest;
  }

  #banners() {
    const s = this.strings;
    const pbx = this.pbx || {};
    let pbxText = "";
    if (pbx.state === "blocked") {
      const until = parseTime(pbx.blocked_until);
      pbxText = until === null ? s.pbx_blocked_unknown : fill(s.pbx_blocked, { time: this.clock.hm(until) });
    } else if (pbx.state === "unreachable") {
      const since = parseTime(pbx.unreachable_since);
      pbxText = fill(s.pbx_unreachable, { time: since === null ? "?" : this.clock.hms(since) });
    } else if (pbx.state === "starting") {
      pbxText = s.pbx_starting;
    }
    this.#show(this.banner.pbx, pbxText);

    let connText = "";
    if (this.conn === "reconnecting") connText = s.reconnecting;
    else if (this.conn === "connecting" && Date.now() - this.connSince > 2000) connText = s.connecting;
    else if (this.conn === "closed") connText = this.closedCode === 4401 ? s.session_ended : s.closed;
    this.#show(this.banner.conn, connText);

    const dataAt = this.dataTime();
    const now = this.now();
    const age = dataAt === null ? Infinity : Math.max(0, (now - dataAt) / 1000);
    const limits = this.config.freshness;
    let ageText = "";
    if (dataAt === null && this.panels.size) ageText = s.no_data;
    else if (age >= limits.notice) {
      ageText = fill(s.data_from, { time: this.clock.hms(dataAt), age: Math.round(age) });
    }
    this.#show(this.banner.age, ageText);
    document.body.classList.toggle("stale", this.panels.size > 0 && age >= limits.stale);
  }

  #show(el, text) {
    if (!el) return;
    setText(el, text);
    el.hidden = !text;
  }

  tick() {
    const now = this.now();
    if (this.clockEl) setText(this.clockEl, this.clock.hms(now));
    for (const panel of this.panels.values()) panel.tick(now);
    this.#banners();
    this.onTick(now);
  }
}

export function pageConfig() {
  return JSON.parse(document.getElementById("page-config").textContent);
}
