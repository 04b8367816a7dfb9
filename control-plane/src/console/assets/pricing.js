// Pricing: every version of the price table, and a form adding a new version.
import { api, clearErrors, el, fill, oneAtATime, say, showErrors, table, when } from './common.js';

const form = document.getElementById('price-form');
const rows = document.getElementById('rows');
const PRICE_FIELDS = ['input', 'output', 'cached_input', 'cache_write'];
let counter = 0;

function addRow(model = '', prices = {}) {
  const n = counter++;
  const cell = (name, label, attrs) =>
    el(
      'td',
      {},
      el('input', { name: `row${n}.${name}`, 'aria-label': label, ...attrs }),
      el('p', { class: 'field-error', 'data-error-for': `row${n}.${name}`, hidden: true }),
    );
  const row = el(
    'tr',
    { 'data-row': n },
    cell('model', `Model ${n + 1}`, { value: model }),
    PRICE_FIELDS.map((f) =>
      cell(f, `${f.replace('_', ' ')} price for model ${n + 1}`, {
        type: 'number',
        min: '0',
        step: 'any',
        value: prices[f] ?? '',
      }),
    ),
  );
  rows.append(row);
  return row;
}

async function load() {
  const res = await api('GET', '/v1/pricing');
  if (!res.ok) return say(`Could not load prices (HTTP ${res.status}).`, true);
  const { current, versions } = res.body;
  const sections = versions.map((v) =>
    el(
      'section',
      { 'aria-label': `Version ${v.id}` },
      el(
        'h2',
        {},
        `Version ${v.id}, effective ${when(v.effective_from)}${current?.id === v.id ? ' (in force)' : Date.parse(v.effective_from) > Date.now() ? ' (scheduled)' : ''}`,
      ),
      el(
        'div',
        { class: 'scroll' },
        table(
          `Prices of version ${v.id} (USD per million tokens)`,
          [
            { label: 'Model', cell: (r) => r[0] },
            ...PRICE_FIELDS.map((f) => ({
              label: f.replace('_', ' '),
              cell: (r) => r[1][f] ?? '—',
              num: true,
            })),
          ],
          Object.entries(v.prices),
        ),
      ),
    ),
  );
  fill(
    document.getElementById('versions'),
    sections.length ? sections : el('p', {}, 'No price versions yet.'),
  );
  if (rows.children.length === 0) {
    const latest = versions[0];
    if (latest) for (const [model, prices] of Object.entries(latest.prices)) addRow(model, prices);
    else addRow();
  }
}

document.getElementById('add-row').addEventListener('click', () => addRow().querySelector('input').focus());

form.addEventListener(
  'submit',
  oneAtATime(form, async () => {
    clearErrors(form);
    // Model names are typed in: without a prototype, "__proto__" is sent as a key rather than
    // silently set as the object's prototype.
    const prices = Object.create(null);
    for (const row of rows.querySelectorAll('tr')) {
      const n = row.dataset.row;
      const model = row.querySelector(`[name="row${n}.model"]`).value.trim();
      if (!model) continue;
      const entry = {};
      for (const f of PRICE_FIELDS) {
        const input = row.querySelector(`[name="row${n}.${f}"]`);
        // The server names fields by model (prices.<model>.input): point those at this row.
        row.querySelector(`[data-error-for="row${n}.${f}"]`).dataset.errorFor = `prices.${model}.${f}`;
        input.name = `prices.${model}.${f}`;
        if (input.value !== '') entry[f] = Number(input.value);
      }
      prices[model] = entry;
    }
    const local = form.effective_from.value;
    const res = await api('POST', '/v1/pricing/versions', {
      effective_from: local ? `${local.length === 16 ? `${local}:00` : local}Z` : '',
      prices,
    });
    // Errors are placed while the fields carry the server's names; then back to row-based
    // names, so renaming a model before the next try still lines up.
    if (!res.ok) showErrors(form, res);
    for (const row of rows.querySelectorAll('tr')) {
      const n = row.dataset.row;
      const names = ['model', ...PRICE_FIELDS].map((f) => `row${n}.${f}`);
      row.querySelectorAll('input').forEach((input, k) => (input.name = names[k]));
      row.querySelectorAll('[data-error-for]').forEach((p, k) => (p.dataset.errorFor = names[k]));
    }
    if (!res.ok) return;
    say(`Price version ${res.body.id} added.`);
    await load();
  }),
);

await load();
