// Small pure helpers shared by the board pages: text formatting and in-place DOM writes.

/** 45 -> "0:45", 3725 -> "1:02:05"; negative/invalid -> "—". */
export function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** "Data from {time}" + {time: "10:15"} -> "Data from 10:15". Unknown names stay as they are. */
export function fill(template, vars) {
  return template.replace(/\{(\w+)\}/g, (whole, key) => (key in vars ? String(vars[key]) : whole));
}

/** ISO 8601 -> epoch ms, or null. */
export function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : null;
}

/** Wall-clock formatters in the installation's time zone (Europe/Bratislava by default). */
export function makeClock(timeZone, locale) {
  const opts = { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  const hm = new Intl.DateTimeFormat(locale, opts);
  const hms = new Intl.DateTimeFormat(locale, { ...opts, second: "2-digit" });
  return { hm: (ms) => hm.format(ms), hms: (ms) => hms.format(ms) };
}

/** Write text only when it changed: no layout work and no new nodes for a repeated value. */
export function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

/** Toggle an attribute-backed state only when it changed. */
export function setData(el, name, value) {
  if (el && el.dataset[name] !== value) el.dataset[name] = value;
}

/** null/undefined -> "—" (a KPI the PBX has not given us yet). */
export function dash(value) {
  return value === null || value === undefined ? "—" : String(value);
}

/** Service level in percent (0..100, as the live KPI gives it) -> "87 %". */
export function percent(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  return `${Math.round(value)} %`;
}
