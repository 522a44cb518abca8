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

/** null/undefined -> "—" (a figure not published yet). */
export function dash(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

/** A mean in seconds (ASA, one decimal) to the nearest second, as duration(): 7.6 -> "0:08". */
export function meanDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "—";
  return duration(Math.floor(seconds + 0.5));
}

/** Members taking calls now: the sum of `counts` over `states` ("—" without counts). */
export function takingCalls(counts, states) {
  if (!counts) return "—";
  return String(states.reduce((sum, state) => sum + (Number(counts[state]) || 0), 0));
}

/** The staffing hint's agents: "14", "> 200" (capped), "—" without a hint. */
export function needed(staffing) {
  if (!staffing) return "—";
  if (staffing.capped) return `> ${staffing.max_agents}`;
  return staffing.needed === null || staffing.needed === undefined ? "—" : String(staffing.needed);
}

/** How the staffing hint was made, in words (`words`: strings.staffing), or "" without one. */
export function staffingBasis(staffing, words) {
  if (!staffing) return "";
  const values = {
    calls: staffing.calls,
    minutes: Math.round((staffing.window_seconds || 0) / 60),
    min: staffing.min_calls,
    aht: meanDuration(staffing.aht),
    percent: staffing.target_percent,
    target: staffing.target_seconds,
  };
  let template = words.no_aht;
  if (staffing.needed !== null || staffing.capped) template = words.basis;
  else if ((staffing.calls || 0) < (staffing.min_calls || 0)) template = words.few_calls;
  return fill(template, values);
}

/** The service level against its goal, for a data attribute: "yes", "no" or "". */
export function met(kpi) {
  const value = kpi ? kpi.service_level_met : null;
  return value === null || value === undefined ? "" : value ? "yes" : "no";
}

/** A percentage (0..100, one decimal, as the figures give it) -> "87 %". */
export function percent(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  return `${Math.round(value)} %`;
}
