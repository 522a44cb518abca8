// The console's missed callers: today's callers who gave up and have not been served since,
// newest first. The server paints the first rows; this module reads the list again from the
// API every `refresh_seconds`, right after a call back and when the call history publishes
// (refresh()), and calls back through the API: a dialog asks for the extension that rings
// first. Rows are keyed by the entry's id and reused. Numbers come written for reading from
// the server (one formatter, in Python); times are written here in the installation's zone.

import { duration, fill, parseTime, setData, setText } from "./format.js";

const REQUEST_TIMEOUT_MS = 20000;

function fields(root) {
  const found = {};
  for (const el of root.querySelectorAll("[data-f]")) found[el.dataset.f] = el;
  return found;
}

export class MissedCallers {
  /**
   * @param {object} options
   * @param {HTMLElement} options.root  the panel ([data-f="missed-callers"])
   * @param {HTMLDialogElement} options.dialog  the call-back dialog
   * @param {HTMLTemplateElement} options.template  one row
   * @param {object} options.config  page config's `missed`
   * @param {Array} options.extensions  [{extension, name, registered}] from the page config
   * @param {object} options.strings  page strings (`missed`, `outcomes`, `registered`...)
   * @param {{hm: (ms: number) => string}} options.clock
   * @param {() => string} options.csrfToken
   */
  constructor({ root, dialog, template, config, extensions, strings, clock, csrfToken }) {
    this.root = root;
    this.dialog = dialog;
    this.template = template;
    this.config = config;
    this.extensions = extensions || [];
    this.s = strings;
    this.words = strings.missed;
    this.clock = clock;
    this.csrfToken = csrfToken;
    this.f = fields(root);
    this.dialogF = fields(dialog);
    this.select = dialog.querySelector("select");
    this.rows = new Map(); // id -> {el, f}
    this.entries = new Map(); // id -> the API's entry
    this.pending = new Set(); // ids whose call back is being sent
    this.defaultExtension = config.default_extension;
    this.choosing = null; // the entry the dialog is open for
    this.loading = false;
    this.again = false;
    for (const el of this.f["missed-rows"].querySelectorAll("tr[data-id]")) {
      this.rows.set(Number(el.dataset.id), { el, f: fields(el) });
    }
  }

  start() {
    this.render(this.config.callers || []);
    this.root.addEventListener("click", (event) => {
      const button = event.target.closest('button[data-action="call-back"]');
      const row = button && button.closest("tr[data-id]");
      if (!row || button.disabled) return;
      const entry = this.entries.get(Number(row.dataset.id));
      if (entry) this.#choose(entry);
    });
    this.dialog.addEventListener("close", () => {
      const entry = this.choosing;
      this.choosing = null;
      if (entry && this.dialog.returnValue === "ok" && this.select.value) {
        this.callBack(entry, Number(this.select.value));
      }
    });
    setInterval(() => this.refresh(), (this.config.refresh_seconds || 20) * 1000);
  }

  /** Read the list again (one request at a time; a call during one asks for another after). */
  async refresh() {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      const response = await this.#fetch(this.config.url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.json();
      this.defaultExtension = body.default_extension;
      this.render(body.callers);
      this.#status("");
    } catch (error) {
      this.#status(this.words.refresh_failed);
    } finally {
      this.loading = false;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    }
  }

  render(callers) {
    const wanted = new Set(callers.map((entry) => entry.id));
    for (const [id, row] of this.rows) {
      if (!wanted.has(id)) {
        row.el.remove();
        this.rows.delete(id);
      }
    }
    this.entries = new Map(callers.map((entry) => [entry.id, entry]));
    const body = this.f["missed-rows"];
    let previous = null;
    for (const entry of callers) {
      let row = this.rows.get(entry.id);
      if (!row) {
        const el = this.template.content.firstElementChild.cloneNode(true);
        el.dataset.id = String(entry.id);
        row = { el, f: fields(el) };
        this.rows.set(entry.id, row);
      }
      this.#fill(row, entry);
      // Newest first, as the server orders them: move a row only when it is out of place.
      const expected = previous ? previous.nextElementSibling : body.firstElementChild;
      if (expected !== row.el) body.insertBefore(row.el, expected);
      previous = row.el;
    }
    setText(this.f["missed-count"], String(callers.length));
    this.f["missed-empty"].hidden = callers.length > 0;
  }

  #fill(row, entry) {
    const f = row.f;
    const when = parseTime(entry.when);
    setText(f.time, when === null ? "" : this.clock.hm(when));
    if (f.time.getAttribute("datetime") !== entry.when) f.time.setAttribute("datetime", entry.when);
    setText(f.number, entry.number_display);
    setText(f.outcome, this.s.outcomes[entry.outcome] || entry.outcome);
    setText(f.queue, this.#queueName(entry.queue));
    setText(f.wait, duration(entry.wait === null ? NaN : entry.wait));
    setText(f.attempts, String(entry.attempts));
    const progress = entry.call_back;
    let state = "";
    if (progress) {
      const since = parseTime(progress.since);
      const template = progress.by_you ? this.words.by_you : this.words.by_other;
      state = fill(template, {
        name: progress.by, ext: progress.extension, time: since === null ? "?" : this.clock.hm(since),
      });
    }
    const sending = this.pending.has(entry.id);
    if (sending) state = this.words.calling;
    setText(f.state, state);
    setData(row.el, "claimed", progress ? (progress.by_you ? "you" : "other") : "");
    const button = row.el.querySelector('button[data-action="call-back"]');
    button.hidden = Boolean(progress) || sending || !entry.can_call_back;
    button.disabled = sending;
  }

  #queueName(queue) {
    const names = this.config.queue_names || {};
    return names[String(queue)] || String(queue);
  }

  #choose(entry) {
    this.choosing = entry;
    setText(this.dialogF["callback-text"], fill(this.words.dialog, {
      number: entry.number_display, queue: this.#queueName(entry.queue), attempts: entry.attempts,
    }));
    const select = this.select;
    select.replaceChildren();
    if (!this.extensions.length) {
      const none = new Option(this.words.no_extensions, "");
      none.disabled = true;
      select.add(none);
    }
    for (const ext of this.extensions) {
      const state = ext.registered ? this.s.registered : this.s.not_registered;
      const option = new Option(`${ext.extension} — ${ext.name || "?"} (${state})`, String(ext.extension));
      option.disabled = !ext.registered;
      select.add(option);
    }
    const preferred = this.extensions.find((ext) => ext.extension === this.defaultExtension && ext.registered);
    const first = this.extensions.find((ext) => ext.registered);
    select.value = String((preferred || first || { extension: "" }).extension);
    this.dialog.showModal();
  }

  /** Post the call back; the row's button stays disabled until the API answers. */
  async callBack(entry, extension) {
    if (this.pending.has(entry.id)) return;
    this.pending.add(entry.id);
    this.#refill(entry.id);
    this.#result(fill(this.words.result, { number: entry.number_display, message: this.s.pending }), "pending");
    let ok = false;
    let message = null; // the server's words name the number already
    try {
      const url = this.config.call_back_url.replace("{id}", String(entry.id));
      const response = await this.#fetch(url, {
        method: "POST",
        headers: {
          Accept: "application/json",
          "Content-Type": "application/json",
          "X-CSRFToken": this.csrfToken(),
        },
        body: JSON.stringify({ extension }),
      });
      const body = await response.json().catch(() => ({}));
      ok = response.ok && body.ok === true;
      message = body.message || body.detail || null;
      if (ok) this.defaultExtension = extension;
    } catch (error) {
      message = null;
    } finally {
      this.pending.delete(entry.id);
      this.#refill(entry.id);
    }
    const text = message || fill(this.words.result, { number: entry.number_display, message: this.s.no_answer });
    this.#result(text, ok ? "ok" : "fail");
    this.refresh();
  }

  #refill(id) {
    const row = this.rows.get(id);
    const entry = this.entries.get(id);
    if (row && entry) this.#fill(row, entry);
  }

  #result(text, outcome) {
    const el = this.f["missed-result"];
    setText(el, text);
    setData(el, "outcome", outcome);
  }

  #status(text) {
    const el = this.f["missed-status"];
    setText(el, text);
    el.hidden = !text;
  }

  #fetch(url, options) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    return fetch(url, { credentials: "same-origin", ...options, signal: controller.signal })
      .finally(() => clearTimeout(timer));
  }
}
