// Overview: totals for 24 hours and 30 days, cost per hour by model, top tenants.
import { api, cost, el, fill, int, say, table } from './common.js';
import { stackedBars } from './charts.js';

const res = await api('GET', '/overview');
if (!res.ok) say(`Could not load the overview (HTTP ${res.status}).`, true);
else {
  const { last_24h: day, last_30d: month, top_tenants: top, cost_per_hour: hourly } = res.body;
  const card = (label, value) =>
    el('div', { class: 'card' }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value));
  fill(
    document.getElementById('totals'),
    card('Requests, 24 hours', int(day.requests)),
    card('Tokens, 24 hours', int(day.tokens)),
    card('Cost, 24 hours', cost(day.cost_usd, day.unpriced_requests)),
    card('Requests, 30 days', int(month.requests)),
    card('Tokens, 30 days', int(month.tokens)),
    card('Cost, 30 days', cost(month.cost_usd, month.unpriced_requests)),
  );
  fill(
    document.getElementById('top'),
    table(
      'Top tenants by cost, last 30 days',
      [
        {
          label: 'Tenant',
          cell: (r) => el('a', { href: `/console/tenants/${encodeURIComponent(r.tenant)}` }, r.tenant),
        },
        { label: 'Requests', cell: (r) => int(r.requests), num: true },
        { label: 'Cost', cell: (r) => cost(r.cost_usd, r.unpriced_requests), num: true },
      ],
      top,
      'No usage in the last 30 days.',
      { captionShown: false },
    ),
  );
  stackedBars(document.getElementById('cost-chart'), hourly, 'cost_usd', 'hour');
  // The chart's numbers as a table, for a screen reader and for whoever wants the figures:
  // the hours that cost anything or had unpriced requests, a column per model.
  const models = Object.entries(hourly.models);
  const hours = hourly.buckets
    .map((bucket, i) => ({
      bucket,
      costs: models.map(([, values]) => values.cost_usd[i] ?? 0),
      unpriced: models.map(([, values]) => values.unpriced_requests[i] ?? 0),
    }))
    .filter((row) => row.costs.some((c) => c > 0) || row.unpriced.some((n) => n > 0));
  fill(
    document.getElementById('cost-table'),
    table(
      'Cost per hour by model, last 24 hours (USD)',
      [
        { label: 'Hour (UTC)', cell: (r) => `${r.bucket.slice(0, 10)} ${r.bucket.slice(11, 13)}:00` },
        ...models.map(([model], m) => ({
          label: model,
          cell: (r) => cost(r.costs[m], r.unpriced[m]),
          num: true,
        })),
        {
          label: 'Total',
          cell: (r) =>
            cost(
              r.costs.reduce((a, c) => a + c, 0),
              r.unpriced.reduce((a, n) => a + n, 0),
            ),
          num: true,
        },
      ],
      hours,
      'No cost in the last 24 hours.',
    ),
  );
}
