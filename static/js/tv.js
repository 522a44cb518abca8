// The wallroom TV board: read-only, full screen, pages of queues rotating on a timer, optional
// beep when a queue turns red. Everything updates in place; no timer or listener is ever added
// after start-up, so the page can run for weeks.

import { BoardPage, pageConfig } from "./lib/board-page.js";
import { fill, setText } from "./lib/format.js";

const BEEP_MIN_INTERVAL_MS = 10000;

function agentGrid(panel) {
  // Rows and columns of the agent grid: the CSS sizes each row from the panel's height, so every
  // agent fits without scrolling from 1366×768 to 3840×2160.
  const n = panel.rows.size;
  // One column reads best (the name gets the width); split only when rows would get tiny.
  const cols = n > 40 ? 3 : n > 20 ? 2 : 1;
  const rows = Math.max(8, Math.ceil(n / cols));
  panel.el.style.setProperty("--agent-cols", String(cols));
  panel.el.style.setProperty("--agent-rows", String(rows));
  panel.el.dataset.cols = String(cols);
}

class Beeper {
  // WebAudio, no audio files. Browsers start audio only after a user gesture unless the kiosk
  // browser runs with --autoplay-policy=no-user-gesture-required (docs/architecture.md).
  constructor() {
    this.context = null;
    this.last = 0;
    const unlock = () => this.#ensure();
    document.addEventListener("pointerdown", unlock, { once: true });
    document.addEventListener("keydown", unlock, { once: true });
  }

  #ensure() {
    if (!this.context) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return null;
      this.context = new Context();
    }
    if (this.context.state === "suspended") this.context.resume();
    return this.context;
  }

  beep() {
    const now = Date.now();
    if (now - this.last < BEEP_MIN_INTERVAL_MS) return;
    const ctx = this.#ensure();
    if (!ctx || ctx.state !== "running") return;
    this.last = now;
    for (const [offset, freq] of [[0, 880], [0.25, 660]]) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, ctx.currentTime + offset);
      gain.gain.exponentialRampToValueAtTime(0.4, ctx.currentTime + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + offset + 0.2);
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + offset);
      osc.stop(ctx.currentTime + offset + 0.22); // ended nodes are garbage-collected
    }
  }
}

function main() {
  const config = pageConfig();
  const container = document.querySelector('[data-f="queues"]');
  const pageEl = document.querySelector('[data-f="page"]');
  const agentTemplate = document.getElementById("agent-tpl");
  const settings = config.board;
  const beeper = settings.sound ? new Beeper() : null;
  const lastLevel = new Map();
  let shownPage = -1;

  const page = new BoardPage({
    config,
    container,
    agentTemplateFor: () => agentTemplate,
    onMessage: (message) => {
      if (message.type === "snapshot") {
        const panel = page.panels.get(message.queue);
        if (panel) agentGrid(panel);
      }
    },
    onLayout: () => {
      for (const panel of page.panels.values()) agentGrid(panel);
      shownPage = -1; // re-apply the page split on the next tick
    },
    onTick: (now) => {
      const panels = [...page.panels.values()];
      const perPage = Math.max(1, settings.per_page);
      const pages = Math.max(1, Math.ceil(panels.length / perPage));
      // The page follows the clock, not a timer of its own: nothing to leak or drift.
      const current = Math.floor(now / (settings.rotation * 1000)) % pages;
      if (current !== shownPage) {
        shownPage = current;
        panels.forEach((panel, i) => {
          panel.el.hidden = Math.floor(i / perPage) !== current;
        });
        const onPage = Math.min(perPage, panels.length - current * perPage);
        container.style.setProperty("--queue-cols", String(Math.max(1, onPage)));
        pageEl.hidden = pages < 2;
        setText(pageEl, fill(config.strings.page, { n: current + 1, total: pages }));
      }
      for (const panel of panels) {
        const before = lastLevel.get(panel.queue.queue);
        if (beeper && panel.level === "red" && before !== undefined && before !== "red") beeper.beep();
        lastLevel.set(panel.queue.queue, panel.level);
      }
      if (lastLevel.size > panels.length) {
        for (const queue of lastLevel.keys()) if (!page.panels.has(queue)) lastLevel.delete(queue);
      }
    },
  });
  page.start();
}

main();
