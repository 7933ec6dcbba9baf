// The aigw dashboard page: reads api/metrics for the window in the URL, draws tiles, charts
// (uPlot) and tables, and reads again every few seconds (`refresh` in the URL, 5 by default)
// unless paused. Numbers are shown as the API gives them; every cell also carries the exact
// value in data-value.
"use strict";

const REFRESH_MS = refreshMs();
const $ = (selector) => document.querySelector(selector);
const state = { paused: false, timer: null, generation: 0, charts: {}, sort: {}, data: null };

// -- formatting (tests/test_dashboard_browser.py formats the JSON the same way) -------------
const NONE = "–";
const fmt = {
  count: (v) => (v === null || v === undefined ? NONE : v.toLocaleString("en-US")),
  rate: (v) => (v === null || v === undefined ? NONE : (v * 100).toFixed(1) + "%"),
  ms: (v) => (v === null || v === undefined ? NONE : v.toFixed(0) + " ms"),
  usd: (v) => (v === null || v === undefined ? NONE : "$" + v.toFixed(v < 1 ? 4 : 2)),
  text: (v) => (v === null || v === undefined || v === "" ? NONE : String(v)),
};
const TILE_FORMAT = {
  calls: "count", success_rate: "rate", error_rate: "rate", p50_ms: "ms", p95_ms: "ms",
  p99_ms: "ms", cache_hit_rate: "rate", cost_total_usd: "usd",
};
// Which way is better, for the colour of a change (the arrow and words say it too).
const HIGHER_IS_BETTER = { success_rate: true, cache_hit_rate: true };
const NEUTRAL = { calls: true, cost_total_usd: true };

// -- the URL carries the window and filters --------------------------------------------------
const FILTERS = ["since", "until", "endpoint", "agent", "model"];
const BUCKET_WORDS = { "5m": "5 minutes", "1h": "hour", "1d": "day" };

// How often the page reads again: `refresh` seconds in the URL (at least 0.2), else 5.
function refreshMs() {
  const asked = Number(new URLSearchParams(location.search).get("refresh"));
  return asked > 0 ? Math.max(200, asked * 1000) : 5000;
}

function paramsFromUrl() {
  const url = new URLSearchParams(location.search);
  const params = {};
  for (const name of FILTERS) if (url.get(name)) params[name] = url.get(name);
  return params;
}

function showParams(params) {
  const since = $("#since");
  const value = params.since || "24h";
  if (![...since.options].some((o) => o.value === value)) since.add(new Option(value, value));
  since.value = value;
  for (const name of ["until", "endpoint", "agent", "model"]) $("#" + name).value = params[name] || "";
}

function paramsFromForm() {
  const params = {};
  const refresh = new URLSearchParams(location.search).get("refresh");
  for (const name of FILTERS) {
    const value = $("#" + name).value.trim();
    if (value && !(name === "since" && value === "24h")) params[name] = value;
  }
  if (refresh) params.refresh = refresh; // the page's own setting: kept, never sent to the API
  return params;
}

function query(params) {
  const search = new URLSearchParams(params).toString();
  return search ? "?" + search : "";
}

// -- reading ---------------------------------------------------------------------------------
async function load() {
  clearTimeout(state.timer);
  const params = paramsFromUrl();
  $("#status").textContent = "Loading…";
  try {
    const response = await fetch("api/metrics" + query(params), { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    state.data = body;
    render(body);
    $("#problem").hidden = true;
    $("#status").textContent = "Updated " + new Date().toLocaleTimeString("en-GB") +
      (state.paused ? " (paused)" : "");
  } catch (error) {
    $("#problem").textContent = "Could not read the metrics: " + error.message;
    $("#problem").hidden = false;
    $("#status").textContent = "";
    document.body.dataset.state = "error";
  }
  schedule();
}

function schedule() {
  clearTimeout(state.timer);
  if (!state.paused) state.timer = setTimeout(load, REFRESH_MS);
}

// -- drawing ---------------------------------------------------------------------------------
function render(view) {
  const report = view.report;
  const empty = report.total.calls === 0 && report.total.attempts === 0;
  $("#where").textContent = `${report.source} store · ${report.since.slice(0, 16).replace("T", " ")}` +
    ` to ${report.until.slice(0, 16).replace("T", " ")} UTC` +
    (report.endpoint ? ` · ${report.endpoint}` : "") + (report.agent ? ` · agent ${report.agent}` : "") +
    (report.model ? ` · model ${report.model}` : "");
  $("#empty").hidden = !empty;
  renderTiles(report, view.previous);
  renderCharts(view.buckets, report, empty);
  renderTable("#endpoints-table", report.groups);
  renderTable("#agents-table", agentRows(report));
  renderErrors(view.errors);
  fillChoices("#endpoints", report.groups.map((g) => g.key));
  fillChoices("#agents", report.cost_by_agent.map((r) => r.key));
  fillChoices("#models", report.cost_by_model.map((r) => r.key));
  state.generation += 1;
  // Drawn on the next frame: then the page says it is ready (tests and bench/dashboard.py).
  requestAnimationFrame(() => {
    document.body.dataset.generation = String(state.generation);
    document.body.dataset.state = empty ? "empty" : "ready";
    if (window.aigwFirstRender === undefined) window.aigwFirstRender = performance.now();
  });
}

// An agent is shown by its name when the store knows it, else by its key.
function agentRows(report) {
  return report.cost_by_agent.map((r) => ({ ...r, label: r.label || r.key || "(none)" }));
}

function tileValue(metric, report) {
  return metric === "cost_total_usd" ? report.cost_total_usd : report.total[metric];
}

function renderTiles(report, previous) {
  const before = { ...previous.total, cost_total_usd: previous.cost_total_usd };
  for (const tile of document.querySelectorAll(".tile")) {
    const metric = tile.dataset.metric;
    const value = tileValue(metric, report);
    const cell = tile.querySelector(".value");
    cell.textContent = fmt[TILE_FORMAT[metric]](value);
    cell.dataset.value = value === null ? "" : String(value);
    const delta = tile.querySelector(".delta");
    const change = describeChange(metric, value, before[metric]);
    delta.textContent = change.text;
    delta.className = "delta " + change.tone;
  }
}

function describeChange(metric, now, then) {
  const span = "vs previous window";
  if (now === null || then === null || now === undefined || then === undefined) {
    return { text: then === null || then === undefined || then === 0 ? "no previous data" : "", tone: "" };
  }
  let amount;
  let diff;
  if (TILE_FORMAT[metric] === "rate") {
    diff = now - then;
    amount = Math.abs(diff * 100).toFixed(1) + " pt";
  } else {
    if (then === 0) return { text: now === 0 ? "no change " + span : "new " + span, tone: "" };
    diff = (now - then) / then;
    const percent = Math.abs(diff * 100);
    amount = percent.toFixed(percent < 10 ? 1 : 0) + "%";
  }
  if (Math.abs(diff) < 1e-9) return { text: "no change " + span, tone: "" };
  const up = diff > 0;
  const tone = NEUTRAL[metric] ? "" : up === Boolean(HIGHER_IS_BETTER[metric]) ? "good" : "bad";
  return { text: `${up ? "▲ up" : "▼ down"} ${amount} ${span}`, tone };
}

const COLOURS = {
  ok: "#2b7a3d", client: "#b7791f", limited: "#805ad5", server: "#c53030", network: "#4a5568",
  p50: "#2b6cb0", p95: "#b7791f", p99: "#c53030", cache: "#2b7a3d",
};

function chartWidth(element) {
  return Math.max(260, element.clientWidth || 600);
}

function drawChart(id, series, data, yLabel) {
  const element = $(id);
  const options = {
    width: chartWidth(element),
    height: 200,
    series: [{ label: "UTC", value: (u, v) => (v === null ? NONE : new Date(v * 1000).toISOString().slice(0, 16).replace("T", " ")) }, ...series],
    axes: [{}, { label: yLabel, size: 60 }],
    scales: { x: { time: true } },
    legend: { live: true },
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
  };
  if (state.charts[id]) state.charts[id].destroy();
  state.charts[id] = new uPlot(options, data, element);
}

function renderCharts(buckets, report, empty) {
  $("#charts").hidden = empty;
  if (empty) return;
  const per = "per " + (BUCKET_WORDS[report.bucket] || report.bucket);
  for (const caption of document.querySelectorAll("#charts .per")) caption.textContent = per;
  const x = buckets.map((h) => Date.parse(h.start) / 1000);
  const pick = (name) => buckets.map((h) => h.stats[name]);
  // Stacked: each series is drawn as the sum of itself and those below it; the legend shows
  // its own count.
  const layers = [
    ["2xx", "successful_attempts", COLOURS.ok],
    ["4xx", "client_errors", COLOURS.client],
    ["429", "rate_limited", COLOURS.limited],
    ["5xx", "server_errors", COLOURS.server],
    ["network", "network_errors", COLOURS.network],
  ];
  const own = layers.map(([, name]) => pick(name));
  const stacked = [];
  let running = x.map(() => 0);
  for (const values of own) {
    running = running.map((sum, i) => sum + (values[i] || 0));
    stacked.push(running);
  }
  const order = layers.map((_, i) => layers.length - 1 - i); // the tallest first, so all show
  drawChart(
    "#chart-status",
    order.map((i) => ({
      label: layers[i][0],
      stroke: layers[i][2],
      fill: layers[i][2] + "cc",
      value: (u, v, s, idx) => (idx === null ? NONE : fmt.count(own[i][idx])),
    })),
    [x, ...order.map((i) => stacked[i])],
    "attempts",
  );
  drawChart(
    "#chart-latency",
    [["p50", "p50_ms"], ["p95", "p95_ms"], ["p99", "p99_ms"]].map(([label]) => ({
      label, stroke: COLOURS[label], width: 2, value: (u, v) => fmt.ms(v),
    })),
    [x, pick("p50_ms"), pick("p95_ms"), pick("p99_ms")],
    "ms",
  );
  drawChart(
    "#chart-cache",
    [{ label: "hit rate", stroke: COLOURS.cache, width: 2, value: (u, v) => (v === null ? NONE : v.toFixed(1) + "%") }],
    [x, pick("cache_hit_rate").map((v) => (v === null ? null : v * 100))],
    "%",
  );
  renderModelBars(report.cost_by_model);
  renderCostTrend(x, buckets, report.cost_trend);
}

// Cost per model over time: one line per model, a bucket without usage as zero.
function renderCostTrend(x, buckets, points) {
  const models = [...new Set(points.map((p) => p.model || "(unknown model)"))].sort();
  const at = new Map(buckets.map((b, i) => [b.start, i]));
  const costs = models.map(() => x.map(() => 0));
  for (const point of points) {
    const i = at.get(point.start);
    if (i !== undefined) costs[models.indexOf(point.model || "(unknown model)")][i] += point.cost_usd || 0;
  }
  const palette = ["#2b6cb0", "#b7791f", "#2b7a3d", "#c53030", "#805ad5", "#4a5568"];
  drawChart(
    "#chart-cost",
    models.map((model, i) => ({
      label: model, stroke: palette[i % palette.length], width: 2, value: (u, v) => fmt.usd(v),
    })),
    [x, ...costs],
    "USD",
  );
  $("#chart-cost").dataset.models = models.join(",");
}

function renderModelBars(rows) {
  const box = $("#chart-models");
  box.replaceChildren();
  const top = Math.max(...rows.map((r) => r.cost_usd || 0), 0);
  if (!rows.length) {
    box.textContent = "No token usage in this window.";
    return;
  }
  for (const row of rows) {
    const line = document.createElement("div");
    line.className = "bar-row";
    const name = document.createElement("span");
    name.className = "bar-name";
    name.textContent = row.key || "(unknown model)";
    const track = document.createElement("span");
    track.className = "bar-track";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = top ? `${((row.cost_usd || 0) / top) * 100}%` : "0";
    track.append(bar);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = row.cost_usd === null ? "no price" : fmt.usd(row.cost_usd);
    value.dataset.value = row.cost_usd === null ? "" : String(row.cost_usd);
    line.append(name, track, value);
    box.append(line);
  }
}

function renderTable(selector, rows) {
  const table = $(selector);
  const columns = [...table.querySelectorAll("thead th")];
  const sort = state.sort[selector];
  if (sort) {
    const type = columns.find((c) => c.dataset.key === sort.key).dataset.type;
    rows = [...rows].sort((a, b) => compare(a[sort.key], b[sort.key], type) * sort.direction);
  }
  for (const column of columns) {
    column.setAttribute("aria-sort", sort && sort.key === column.dataset.key
      ? (sort.direction > 0 ? "ascending" : "descending") : "none");
  }
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    for (const column of columns) {
      const value = row[column.dataset.key];
      const cell = document.createElement(column.dataset.type === "text" ? "th" : "td");
      if (column.dataset.type === "text") cell.scope = "row";
      const format = column.dataset.format || (column.dataset.type === "text" ? "text" : "count");
      cell.textContent = fmt[format](value);
      cell.dataset.key = column.dataset.key;
      cell.dataset.value = value === null || value === undefined ? "" : String(value);
      tr.append(cell);
    }
    body.append(tr);
  }
}

function compare(a, b, type) {
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : 1;
  if (b === null || b === undefined) return -1;
  return type === "text" ? String(a).localeCompare(String(b)) : a - b;
}

function renderErrors(errors) {
  const body = $("#errors-table tbody");
  body.replaceChildren();
  if (!errors.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 6;
    td.textContent = "No failed calls in this window.";
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const error of errors) {
    const tr = document.createElement("tr");
    const cells = [
      error.created_at.slice(0, 19).replace("T", " "),
      error.status_code === null ? "network" : String(error.status_code),
      error.method,
      error.endpoint,
      error.error_message || "",
    ];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const link = document.createElement("a");
    link.href = "api/logs/" + encodeURIComponent(error.id);
    link.textContent = "row";
    link.setAttribute("aria-label", "the full log row " + error.id);
    const td = document.createElement("td");
    td.append(link);
    tr.append(td);
    body.append(tr);
  }
}

function fillChoices(selector, values) {
  const list = $(selector);
  list.replaceChildren(...values.filter(Boolean).map((v) => new Option(v)));
}

// -- wiring ----------------------------------------------------------------------------------
function apply(event) {
  if (event) event.preventDefault();
  history.pushState(null, "", location.pathname + query(paramsFromForm()));
  load();
}

function setUp() {
  showParams(paramsFromUrl());
  $("#filters").addEventListener("submit", apply);
  $("#since").addEventListener("change", apply);
  window.addEventListener("popstate", () => {
    showParams(paramsFromUrl());
    load();
  });
  $("#pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("#pause").setAttribute("aria-pressed", String(state.paused));
    $("#pause").textContent = state.paused ? "Resume" : "Pause";
    if (state.paused) clearTimeout(state.timer);
    else load();
  });
  for (const selector of ["#endpoints-table", "#agents-table"]) {
    for (const column of document.querySelectorAll(selector + " thead th")) {
      column.querySelector("button").addEventListener("click", () => {
        const current = state.sort[selector];
        const direction = current && current.key === column.dataset.key ? -current.direction
          : column.dataset.type === "text" ? 1 : -1;
        state.sort[selector] = { key: column.dataset.key, direction };
        if (state.data) renderTable(selector, selector === "#endpoints-table"
          ? state.data.report.groups : agentRows(state.data.report));
      });
    }
  }
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const [id, chart] of Object.entries(state.charts)) {
        chart.setSize({ width: chartWidth($(id)), height: 200 });
      }
    }, 100);
  });
  load();
}

document.addEventListener("DOMContentLoaded", setUp);
