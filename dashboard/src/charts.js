// Chart.js, registered with only the pieces the page uses (so the bundle
// stays small), themed from the page's CSS variables, re-themed when the
// system switches between light and dark.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';

Chart.register(
  BarController, BarElement, CategoryScale, Filler, Legend, LinearScale,
  LineController, LineElement, PointElement, Tooltip,
);

const charts = new Set();

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function applyTheme() {
  Chart.defaults.font.family = cssVar('--font');
  Chart.defaults.color = cssVar('--muted');
  Chart.defaults.borderColor = cssVar('--grid');
  Chart.defaults.plugins.tooltip.backgroundColor = cssVar('--tooltip-bg');
  Chart.defaults.plugins.tooltip.titleColor = cssVar('--tooltip-fg');
  Chart.defaults.plugins.tooltip.bodyColor = cssVar('--tooltip-fg');
  for (const chart of charts) {
    for (const scale of Object.values(chart.options.scales ?? {})) {
      scale.ticks.color = Chart.defaults.color;
      scale.grid.color = Chart.defaults.borderColor;
    }
    chart.options.plugins.legend.labels.color = Chart.defaults.color;
    chart.update('none');
  }
}

applyTheme();
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);

/** A chart on `canvas`; `data-total` starts at 0 (see `setChartTotal`). */
export function createChart(canvas, config) {
  const chart = new Chart(canvas, config);
  charts.add(chart);
  canvas.dataset.total = '0';
  return chart;
}

/**
 * Records on the canvas the sum of every value plotted, so a test (or a
 * curious person) can tell that the chart moved without reading pixels.
 */
export function setChartTotal(chart, total) {
  chart.canvas.dataset.total = String(total);
}

/** Options every chart shares: sized by its box, quiet legend, shared tooltip. */
export function baseOptions({ legend = false, animate = true } = {}) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: animate ? { duration: 250 } : false,
    interaction: { mode: 'index', intersect: false },
    plugins: {
      legend: {
        display: legend,
        position: 'bottom',
        labels: { boxWidth: 8, boxHeight: 8, usePointStyle: true, pointStyle: 'circle', padding: 14 },
      },
      tooltip: { boxPadding: 4, usePointStyle: true },
    },
  };
}
