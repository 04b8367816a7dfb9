// Stacked bar charts with Chart.js (loaded by a classic <script> as window.Chart).
import { int } from './common.js';

/**
 * Dollar ticks all with the decimals their step needs, so an axis of micro-dollars reads
 * $0.000020, $0.000018, … rather than mixing 7 and 8 decimals.
 */
function usdTick(value, ticks) {
  const step = ticks.length > 1 ? Math.abs(ticks[1].value - ticks[0].value) : Math.abs(value);
  const decimals = step > 0 ? Math.min(12, Math.max(2, Math.ceil(-Math.log10(step) - 1e-9))) : 2;
  return `$${Number(value).toFixed(decimals)}`;
}

const COLORS = [
  '#0a58ca',
  '#e8590c',
  '#2b8a3e',
  '#c2255c',
  '#6741d9',
  '#0b7285',
  '#a61e4d',
  '#5c940d',
  '#862e9c',
  '#495057',
];
const charts = new Map();

/** Draws (or redraws) a stacked bar chart of one metric of a per-model series. */
export function stackedBars(canvas, series, metric, granularity) {
  charts.get(canvas)?.destroy();
  const labels = series.buckets.map((b) =>
    granularity === 'day' ? b.slice(5, 10) : `${b.slice(11, 13)}:00`,
  );
  const datasets = Object.entries(series.models).map(([model, values], i) => ({
    label: model,
    data: values[metric],
    backgroundColor: COLORS[i % COLORS.length],
  }));
  const chart = new window.Chart(canvas, {
    type: 'bar',
    data: { labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: {
        x: { stacked: true },
        y: {
          stacked: true,
          beginAtZero: true,
          ticks: {
            callback: (value, _index, ticks) => (metric === 'cost_usd' ? usdTick(value, ticks) : int(value)),
          },
        },
      },
      plugins: { legend: { position: 'bottom' } },
    },
  });
  charts.set(canvas, chart);
  return chart;
}
