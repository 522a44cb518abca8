// The reports page: four charts (Chart.js, vendored, loaded before this module as window.Chart)
// drawn from the server's figures, the drill-down (a server-rendered HTML fragment per page of
// calls), the sortable agents table and the range form. The figures themselves are on the page
// without JavaScript; this only draws and fetches.

import { duration } from "./lib/format.js";

const config = JSON.parse(document.getElementById("report-config").textContent);
const data = config.charts;
const s = config.strings;
const lang = document.documentElement.lang || undefined;
const charts = [];

// --- labels -------------------------------------------------------------------------------------

function formatter(options) {
  return new Intl.DateTimeFormat(lang, { timeZone: config.time_zone, ...options });
}

const decimal = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
const dayOnly = formatter({ weekday: "short", day: "numeric", month: "short" });
const dayYear = formatter({ weekday: "short", day: "numeric", month: "short", year: "numeric" });
const clock = formatter({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const monthYear = formatter({ month: "long", year: "numeric" });
const starts = data.periods.map(([start]) => new Date(start));
const ends = data.periods.map(([, end]) => new Date(end));
const oneDay = data.periods.length > 0
  && dayOnly.format(starts[0]) === dayOnly.format(new Date(ends[ends.length - 1] - 1));

/** The axis label of period i: short, as the interval needs. */
function periodLabel(i) {
  const start = starts[i];
  switch (data.interval) {
    case "15min":
    case "hour":
      return oneDay ? clock.format(start) : `${dayOnly.format(start)} ${clock.format(start)}`;
    case "day":
      return dayOnly.format(start);
    case "week":
      return `${dayOnly.format(start)} – ${dayOnly.format(new Date(ends[i] - 1))}`;
    default:
      return monthYear.format(start);
  }
}

/** The tooltip's title of period i: the whole period, with its year. */
function periodTitle(i) {
  const start = starts[i];
  const end = ends[i];
  if (data.interval === "15min" || data.interval === "hour") {
    return `${dayYear.format(start)}, ${clock.format(start)}–${clock.format(end)}`;
  }
  const last = new Date(end - 1);
  if (data.interval === "day") return dayYear.format(start);
  return `${dayYear.format(start)} – ${dayYear.format(last)}`;
}

// --- colours: from CSS custom properties, so the charts follow the light or dark theme ------------

function palette() {
  const style = getComputedStyle(document.documentElement);
  const read = (name) => style.getPropertyValue(name).trim();
  return {
    answered: read("--chart-answered"),
    abandoned: read("--chart-abandoned"),
    other: read("--chart-other"),
    level: read("--chart-level"),
    goal: read("--chart-goal"),
    asa: read("--chart-asa"),
    longest: read("--chart-longest"),
    text: read("--chart-text"),
    grid: read("--chart-grid"),
  };
}

function themed(colors) {
  Chart.defaults.color = colors.text;
  Chart.defaults.borderColor = colors.grid;
}

// --- charts ---------------------------------------------------------------------------------------

const periodLabels = data.periods.map((_, i) => periodLabel(i));
const many = data.periods.length > 200;

function baseOptions({ onPeriod, yTitle, yMax, tooltipLabel }) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    normalized: true,
    interaction: { mode: "index", intersect: false },
    onClick: onPeriod
      ? (_event, elements) => { if (elements.length) onPeriod(elements[0].index); }
      : undefined,
    onHover: onPeriod
      ? (event, elements) => { event.native.target.style.cursor = elements.length ? "pointer" : ""; }
      : undefined,
    plugins: {
      legend: { position: "bottom", labels: { boxWidth: 14 } },
      tooltip: {
        callbacks: {
          title: (items) => (onPeriod ? periodTitle(items[0].dataIndex) : items[0].label),
          ...(tooltipLabel ? { label: tooltipLabel } : {}),
        },
      },
    },
    scales: {
      x: {
        stacked: true,
        ticks: { autoSkip: true, maxRotation: 0, autoSkipPadding: 12 },
        grid: { display: false },
      },
      y: {
        stacked: true,
        beginAtZero: true,
        ...(yMax ? { max: yMax } : {}),
        title: { display: Boolean(yTitle), text: yTitle },
      },
    },
  };
}

// Steps of a time axis, in seconds: ticks fall on whole minutes once a minute is small.
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

/** A y axis of seconds with ticks at round times (0:30, 1:00...), shown as m:ss. */
function timeAxis() {
  const stepOf = (max) => TIME_STEPS.find((step) => max / step <= 8) || 3600;
  return {
    beginAtZero: true,
    afterDataLimits: (axis) => {
      const step = stepOf(Math.max(axis.max, 1));
      axis.min = 0;
      axis.max = Math.ceil(Math.max(axis.max, 1) / step) * step;
    },
    afterBuildTicks: (axis) => {
      const step = stepOf(axis.max);
      axis.ticks = [];
      for (let value = 0; value <= axis.max; value += step) axis.ticks.push({ value });
    },
    ticks: { callback: (value) => duration(value) },
  };
}

function draw(colors) {
  const volume = new Chart(document.getElementById("chart-volume"), {
    type: "bar",
    data: {
      labels: periodLabels,
      datasets: [
        { label: s.answered, data: data.answered, backgroundColor: colors.answered, key: "answered" },
        { label: s.abandoned, data: data.abandoned, backgroundColor: colors.abandoned, key: "abandoned" },
        { label: s.other, data: data.other, backgroundColor: colors.other, key: "other" },
      ],
    },
    options: {
      ...baseOptions({ onPeriod: drillPeriod, yTitle: s.calls }),
      datasets: { bar: { categoryPercentage: many ? 1 : 0.8, barPercentage: many ? 1 : 0.9 } },
    },
  });
  volume.options.plugins.tooltip.callbacks.footer = (items) =>
    `${s.offered}: ${data.offered[items[0].dataIndex]}`;

  const levelOptions = baseOptions({
    onPeriod: drillPeriod,
    yTitle: s.percent,
    yMax: 100,
    tooltipLabel: (item) =>
      `${item.dataset.label}: ${item.raw === null ? "—" : `${decimal.format(item.raw)} %`}`,
  });
  levelOptions.scales.y.stacked = false;
  levelOptions.scales.x.stacked = false;
  const level = new Chart(document.getElementById("chart-service-level"), {
    type: "line",
    data: {
      labels: periodLabels,
      datasets: [
        {
          label: s.service_level, data: data.service_level, key: "level",
          borderColor: colors.level, backgroundColor: colors.level,
          pointRadius: many ? 0 : 2, borderWidth: 2, spanGaps: false,
        },
        {
          label: `${s.goal} (${data.goal} %)`, data: data.periods.map(() => data.goal), key: "goal",
          borderColor: colors.goal, backgroundColor: colors.goal,
          borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5,
        },
      ],
    },
    options: levelOptions,
  });

  const asaOptions = baseOptions({
    onPeriod: drillPeriod,
    yTitle: s.asa,
    tooltipLabel: (item) => `${item.dataset.label}: ${item.raw === null ? "—" : duration(item.raw)}`,
  });
  asaOptions.scales.y.stacked = false;
  asaOptions.scales.x.stacked = false;
  // The longest wait runs to the queue's time limit: its own axis keeps the ASA readable.
  asaOptions.scales.y = { ...asaOptions.scales.y, ...timeAxis() };
  asaOptions.scales.longest = {
    position: "right",
    grid: { drawOnChartArea: false },
    title: { display: true, text: s.longest_wait },
    ...timeAxis(),
  };
  const asa = new Chart(document.getElementById("chart-asa"), {
    type: "line",
    data: {
      labels: periodLabels,
      datasets: [
        {
          label: s.asa, data: data.asa, key: "asa",
          borderColor: colors.asa, backgroundColor: colors.asa,
          pointRadius: many ? 0 : 2, borderWidth: 2,
        },
        {
          label: s.longest_wait, data: data.longest_wait, key: "longest", yAxisID: "longest",
          borderColor: colors.longest, backgroundColor: colors.longest,
          pointRadius: 0, borderWidth: 1, borderDash: [3, 3],
        },
      ],
    },
    options: asaOptions,
  });

  const hourLabels = Array.from({ length: 24 }, (_, h) => `${String(h).padStart(2, "0")}:00`);
  const hoursOptions = baseOptions({ yTitle: s.calls });
  hoursOptions.scales.x.title = { display: true, text: s.hour };
  hoursOptions.plugins.tooltip.callbacks.footer = (items) =>
    `${s.offered}: ${data.hours.offered[items[0].dataIndex]}`;
  const hours = new Chart(document.getElementById("chart-hours"), {
    type: "bar",
    data: {
      labels: hourLabels,
      datasets: [
        { label: s.answered, data: data.hours.answered, backgroundColor: colors.answered, key: "answered" },
        { label: s.abandoned, data: data.hours.abandoned, backgroundColor: colors.abandoned, key: "abandoned" },
        { label: s.other, data: data.hours.other, backgroundColor: colors.other, key: "other" },
      ],
    },
    options: hoursOptions,
  });
  charts.push(volume, level, asa, hours);
}

/** Repaint every chart in the current theme's colours (the system switched light/dark). */
function retheme() {
  const colors = palette();
  themed(colors);
  for (const chart of charts) {
    for (const dataset of chart.data.datasets) {
      const color = colors[dataset.key];
      if (!color) continue;
      if (chart.config.type === "bar") dataset.backgroundColor = color;
      else { dataset.borderColor = color; dataset.backgroundColor = color; }
    }
    chart.options.color = colors.text;
    for (const scale of Object.values(chart.options.scales)) {
      scale.ticks.color = colors.text;
      if (scale.title) scale.title.color = colors.text;
      scale.grid.color = colors.grid;
    }
    chart.options.plugins.legend.labels.color = colors.text;
    chart.update();
  }
}

// --- drill-down -----------------------------------------------------------------------------------

const drill = document.querySelector('[data-f="drill"]');
let drillQuery = "";
let drillRequest = 0;

async function loadCalls(query, page = 1) {
  drillQuery = query;
  const sequence = ++drillRequest;
  document.body.classList.add("drill-loading");
  drill.hidden = false;
  if (!drill.firstElementChild) drill.textContent = s.loading;
  try {
    const response = await fetch(`${config.calls_url}&${query}&page=${page}`, {
      headers: { Accept: "text/html" },
      credentials: "same-origin",
    });
    const html = await response.text();
    if (sequence !== drillRequest) return; // a newer click won
    if (response.ok || response.status === 400) {
      // The server renders and escapes the fragment (its own template), as it does the page.
      drill.innerHTML = html;
    } else {
      drill.textContent = s.load_failed;
    }
  } catch {
    if (sequence === drillRequest) drill.textContent = s.load_failed;
  } finally {
    if (sequence === drillRequest) {
      document.body.classList.remove("drill-loading");
      drill.dataset.query = query;
      drill.dataset.page = String(page);
    }
  }
  drill.scrollIntoView({ block: "start", behavior: "smooth" });
  drill.focus({ preventScroll: true });
}

function drillPeriod(index) {
  loadCalls(`period=${index}`);
}

drill.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  if (target.dataset.action === "close") {
    drill.hidden = true;
    drill.replaceChildren();
  } else if (target.dataset.page) {
    loadCalls(drillQuery, Number(target.dataset.page));
  }
});

// --- agents table: sort by any column; a name opens the agent's calls ------------------------------

const agentTable = document.querySelector('[data-f="agent-table"]');
if (agentTable) {
  const headers = [...agentTable.tHead.rows[0].cells];
  agentTable.tHead.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-sort]");
    if (!button) return;
    const th = button.closest("th");
    const column = headers.indexOf(th);
    const numeric = button.dataset.sort === "number";
    const descending = th.getAttribute("aria-sort") !== "descending" && (numeric || th.getAttribute("aria-sort") === "ascending");
    for (const other of headers) if (other !== th && other.hasAttribute("aria-sort")) other.setAttribute("aria-sort", "none");
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    const body = agentTable.tBodies[0];
    const value = (row) => row.cells[column].dataset.value ?? row.cells[column].textContent;
    const compare = numeric
      ? (a, b) => Number(value(a)) - Number(value(b))
      : (a, b) => value(a).localeCompare(value(b), lang);
    const rows = [...body.rows].sort((a, b) => (descending ? -compare(a, b) : compare(a, b)));
    body.append(...rows);
  });
  agentTable.tBodies[0].addEventListener("click", (event) => {
    const button = event.target.closest("button[data-drill-agent]");
    if (button) loadCalls(`agent=${encodeURIComponent(button.dataset.drillAgent)}`);
  });
}

// --- the form: presets and intervals apply at once; typing dates makes the range custom ------------

const form = document.querySelector('[data-f="form"]');
form.elements.range.addEventListener("change", () => {
  if (form.elements.range.value !== "custom") {
    form.elements.date_from.value = "";
    form.elements.date_to.value = "";
  }
  form.requestSubmit();
});
form.elements.interval.addEventListener("change", () => form.requestSubmit());
for (const name of ["date_from", "date_to"]) {
  form.elements[name].addEventListener("change", () => { form.elements.range.value = "custom"; });
}
const picked = form.querySelector('[data-f="picked"]');
form.querySelector(".queue-list").addEventListener("change", () => {
  const ticked = [...form.querySelectorAll('.queue-list input[type="checkbox"]:checked')].map((box) => box.value);
  picked.textContent = ticked.length ? ticked.join(", ") : s.all;
});

// --- go -------------------------------------------------------------------------------------------

const colors = palette();
themed(colors);
draw(colors);
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", retheme);
performance.mark("reports-charts-drawn");
document.body.dataset.charts = "ready";
