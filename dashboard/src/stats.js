// The four chart panels (events/s, hourly, top users, dead letters), each
// polling its `/stats/*` route, and the tiles that come from the same
// answers. A failed call leaves the last chart up with a note on the panel.

import { poll } from './api.js';
import { baseOptions, createChart, setChartTotal } from './charts.js';
import { byTestId, setEmpty, setPanelProblem } from './dom.js';
import {
  EVENT_TYPES, TYPE_COLORS, formatClock, formatCount, formatHour, timeTitle, typeLabel,
} from './format.js';
import { deadLetterSeries, hourlySeries, throughputSeries, topUsersSeries } from './series.js';
import { setTile, setTileNote } from './tiles.js';

const FAST_MS = 2000;
const METRICS_MS = 5000;
const SLOW_MS = 10000;

export function startStatsPanels() {
  startRate(byTestId('panel-rate'));
  startHourly(byTestId('panel-hourly'));
  startTopUsers(byTestId('panel-top-users'));
  startDeadLetters(byTestId('panel-dead'));
  startMetricTiles();
}

/** Events stored and unique users, last 24 h (`/events/metrics`). */
function startMetricTiles() {
  poll('/events/metrics', METRICS_MS, (result) => {
    if (!result.ok) {
      setTileNote('tile-stored', result.message);
      setTileNote('tile-users', result.message);
      return;
    }
    setTile('tile-stored', result.data.total_events, { note: 'last 24 h' });
    setTile('tile-users', result.data.unique_users, { note: 'last 24 h' });
  });
}

/** Calls `show(data)` on success, the panel's problem line otherwise. */
function pollPanel(panel, path, intervalMs, show) {
  poll(path, intervalMs, (result) => {
    setPanelProblem(panel, result.ok ? null : result.message);
    if (result.ok) show(result.data);
  });
}

function typeDatasets(kind) {
  return EVENT_TYPES.map((type) => ({
    label: typeLabel(type),
    data: [],
    borderColor: TYPE_COLORS[type],
    backgroundColor: kind === 'line' ? TYPE_COLORS[type] : `${TYPE_COLORS[type]}d9`,
    borderWidth: kind === 'line' ? 1.75 : 0,
    pointRadius: 0,
    pointHoverRadius: 3,
    tension: 0.3,
    borderRadius: kind === 'bar' ? 2 : 0,
  }));
}

/** Tooltip titles show the full local time and UTC of the bucket. */
function timeTooltip(getDates) {
  return { callbacks: { title: (items) => (items.length ? timeTitle(getDates()[items[0].dataIndex]) : '') } };
}

function startRate(panel) {
  let dates = [];
  const options = baseOptions({ legend: true, animate: false });
  options.plugins.tooltip = { ...options.plugins.tooltip, ...timeTooltip(() => dates) };
  options.scales = {
    x: { grid: { display: false }, ticks: { maxTicksLimit: 6, maxRotation: 0, autoSkip: true } },
    y: { beginAtZero: true, ticks: { precision: 0 } },
  };
  const chart = createChart(byTestId('chart-rate', panel), {
    type: 'line', data: { labels: [], datasets: typeDatasets('line') }, options,
  });
  pollPanel(panel, '/stats/throughput', FAST_MS, (body) => {
    const series = throughputSeries(body);
    dates = series.labels;
    chart.data.labels = series.labels.map(formatClock);
    chart.data.datasets.forEach((dataset, i) => { dataset.data = series.byType[EVENT_TYPES[i]]; });
    chart.update('none');
    setChartTotal(chart, series.total);
    setEmpty(panel, series.total === 0);
    setTile('tile-rate', series.ratePerSecond, { rate: true });
  });
}

function startHourly(panel) {
  let dates = [];
  const options = baseOptions({ legend: true });
  options.plugins.tooltip = { ...options.plugins.tooltip, ...timeTooltip(() => dates) };
  options.scales = {
    x: { stacked: true, grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 12 } },
    y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
  };
  const chart = createChart(byTestId('chart-hourly', panel), {
    type: 'bar', data: { labels: [], datasets: typeDatasets('bar') }, options,
  });
  pollPanel(panel, '/stats/hourly', SLOW_MS, (body) => {
    const series = hourlySeries(body);
    dates = series.labels;
    chart.data.labels = series.labels.map(formatHour);
    chart.data.datasets.forEach((dataset, i) => { dataset.data = series.byType[EVENT_TYPES[i]]; });
    chart.update();
    setChartTotal(chart, series.total);
    setEmpty(panel, series.total === 0);
  });
}

/** A horizontal bar chart of labelled counts (top users, dead letters). */
function rankingChart(canvas, color) {
  const options = baseOptions();
  options.indexAxis = 'y';
  options.interaction = { mode: 'nearest', axis: 'y', intersect: false };
  options.scales = {
    x: { beginAtZero: true, ticks: { precision: 0 } },
    y: { grid: { display: false } },
  };
  return createChart(canvas, {
    type: 'bar',
    data: { labels: [], datasets: [{ label: 'events', data: [], backgroundColor: color, borderRadius: 3, maxBarThickness: 18 }] },
    options,
  });
}

function showRanking(chart, series) {
  chart.data.labels = series.labels;
  chart.data.datasets[0].data = series.values;
  chart.update();
  setChartTotal(chart, series.total);
}

function startTopUsers(panel) {
  const chart = rankingChart(byTestId('chart-top-users', panel), TYPE_COLORS.page_view);
  pollPanel(panel, '/stats/top-users?limit=10', SLOW_MS, (body) => {
    const series = topUsersSeries(body);
    showRanking(chart, series);
    setEmpty(panel, series.labels.length === 0);
  });
}

function startDeadLetters(panel) {
  const chart = rankingChart(byTestId('chart-dead', panel), '#ef4444');
  chart.data.datasets[0].label = 'dead letters';
  const total = panel.querySelector('[data-role="dead-total"]');
  pollPanel(panel, '/stats/dead-letters', SLOW_MS, (body) => {
    const series = deadLetterSeries(body);
    showRanking(chart, series);
    setEmpty(panel, series.total === 0);
    total.textContent = `last 24 h · ${formatCount(series.total)} total`;
    setTile('tile-dead', series.total, { level: series.total > 0 ? 'warn' : undefined });
  });
}
