// A tenant: facts, plan and status, usage by model per hour and per day, keys, erasure.
import { api, clearErrors, cost, el, fill, int, oneAtATime, say, showErrors, table, when } from './common.js';
import { stackedBars } from './charts.js';

const id = document.getElementById('tenant').dataset.tenant;
const path = `/v1/tenants/${encodeURIComponent(id)}`;
const planForm = document.getElementById('plan-form');
const toggle = document.getElementById('toggle-status');
const metric = document.getElementById('metric');
let tenant;
const series = {};

function showTenant() {
  fill(
    document.getElementById('facts'),
    el('dt', {}, 'Id'),
    el('dd', {}, tenant.id),
    el('dt', {}, 'Plan'),
    el('dd', { id: 'current-plan' }, tenant.plan),
    el('dt', {}, 'Status'),
    el('dd', { id: 'current-status' }, tenant.status),
    el('dt', {}, 'Created'),
    el('dd', {}, when(tenant.created_at)),
    el('dt', {}, 'Changes'),
    el('dd', {}, el('a', { href: `/console/audit?tenant=${encodeURIComponent(id)}` }, 'audit log')),
  );
  planForm.plan.value = tenant.plan;
  toggle.textContent = tenant.status === 'active' ? 'Suspend tenant' : 'Reactivate tenant';
}

function drawUsage() {
  if (series.hour) stackedBars(document.getElementById('hour-chart'), series.hour, metric.value, 'hour');
  if (series.day) {
    stackedBars(document.getElementById('day-chart'), series.day, metric.value, 'day');
    const sum = (values) => values.reduce((a, b) => a + b, 0);
    const rows = Object.entries(series.day.models).map(([model, v]) => ({
      model,
      requests: sum(v.requests),
      tokens: sum(v.tokens),
      cost: sum(v.cost_usd),
      unpriced: sum(v.unpriced_requests),
    }));
    fill(
      document.getElementById('usage-table'),
      table(
        'Last 30 days by model',
        [
          { label: 'Model', cell: (r) => r.model },
          { label: 'Requests', cell: (r) => int(r.requests), num: true },
          { label: 'Tokens', cell: (r) => int(r.tokens), num: true },
          { label: 'Cost', cell: (r) => cost(r.cost, r.unpriced), num: true },
        ],
        rows,
        'No usage in the last 30 days.',
      ),
    );
  }
}

async function loadUsage() {
  const [hour, day] = await Promise.all([
    api('GET', `/tenants/${encodeURIComponent(id)}/usage-by-model?granularity=hour`),
    api('GET', `/tenants/${encodeURIComponent(id)}/usage-by-model?granularity=day`),
  ]);
  if (hour.ok) series.hour = hour.body;
  if (day.ok) series.day = day.body;
  drawUsage();
}

async function loadKeys() {
  const res = await api('GET', `${path}/keys`);
  if (!res.ok) return;
  fill(
    document.getElementById('keys'),
    table(
      'Keys',
      [
        { label: 'Key id', cell: (k) => k.id },
        { label: 'Starts with', cell: (k) => el('code', {}, k.prefix) },
        { label: 'Created', cell: (k) => when(k.created_at) },
        { label: 'Status', cell: (k) => (k.revoked_at ? `revoked ${when(k.revoked_at)}` : 'active') },
        {
          label: 'Action',
          cell: (k) =>
            k.revoked_at
              ? ''
              : el(
                  'button',
                  { type: 'button', 'aria-label': `Revoke key ${k.id}`, onclick: () => revoke(k) },
                  'Revoke',
                ),
        },
      ],
      res.body.items,
      'No keys yet.',
    ),
  );
}

async function revoke(key) {
  if (!confirm(`Revoke key ${key.id} (${key.prefix}…)? Requests with it are refused from now on.`)) return;
  const res = await api('DELETE', `${path}/keys/${encodeURIComponent(key.id)}`);
  if (!res.ok) return say(res.body?.error?.message ?? 'Could not revoke the key.', true);
  say(`Key ${key.id} revoked.`);
  await loadKeys();
  document.getElementById('create-key').focus();
}

const createKey = document.getElementById('create-key');
createKey.addEventListener(
  'click',
  oneAtATime(createKey, async () => {
    const res = await api('POST', `${path}/keys`);
    if (!res.ok) return say(res.body?.error?.message ?? 'Could not create a key.', true);
    const notice = document.getElementById('new-key');
    fill(
      notice,
      el('p', {}, 'New key (shown this once; copy it now):'),
      el('p', {}, el('code', { id: 'new-key-value' }, res.body.key)),
      el(
        'button',
        {
          type: 'button',
          onclick: () => {
            notice.hidden = true;
            fill(notice);
          },
        },
        'I have copied it',
      ),
    );
    notice.hidden = false;
    notice.focus();
    say('New key created: it is shown once, below.');
    await loadKeys();
  }),
);

planForm.addEventListener(
  'submit',
  oneAtATime(planForm, async () => {
    clearErrors(planForm);
    const res = await api('PATCH', path, { plan: planForm.plan.value });
    if (!res.ok) return showErrors(planForm, res);
    tenant = res.body;
    showTenant();
    say(`Plan changed to ${tenant.plan}.`);
  }),
);

toggle.addEventListener(
  'click',
  oneAtATime(toggle, async () => {
    const status = tenant.status === 'active' ? 'suspended' : 'active';
    const res = await api('PATCH', path, { status });
    if (!res.ok) return say(res.body?.error?.message ?? 'Could not change the status.', true);
    tenant = res.body;
    showTenant();
    say(status === 'active' ? 'Tenant reactivated.' : 'Tenant suspended: its requests are refused.');
  }),
);

metric.addEventListener('change', drawUsage);

const eraseForm = document.getElementById('erase-form');
const confirmInput = document.getElementById('confirm');
const eraseButton = document.getElementById('erase');
confirmInput.addEventListener('input', () => {
  eraseButton.disabled = confirmInput.value !== id;
});
eraseForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors(eraseForm);
  eraseButton.disabled = true;
  say('Erasing…');
  const res = await api('POST', `/tenants/${encodeURIComponent(id)}/erase`, { confirm: confirmInput.value });
  if (!res.ok) {
    eraseButton.disabled = confirmInput.value !== id;
    return showErrors(eraseForm, res);
  }
  say(`Tenant ${id} erased.`);
  for (const section of document.querySelectorAll('#tenant > section:not(.danger)')) section.hidden = true;
  eraseForm.hidden = true;
  document.getElementById('report').textContent = JSON.stringify(res.body, null, 2);
  const report = document.getElementById('erasure-report');
  report.hidden = false;
  report.focus();
});

const [found, plans] = await Promise.all([api('GET', path), api('GET', '/v1/plans?limit=500')]);
if (plans.ok)
  fill(
    planForm.plan,
    plans.body.items.map((p) => el('option', { value: p.id }, p.id)),
  );
if (!found.ok) {
  say(
    found.status === 404
      ? `Tenant ${id} does not exist (or has been erased).`
      : `Could not load the tenant (HTTP ${found.status}).`,
    true,
  );
  for (const section of document.querySelectorAll('#tenant > section')) section.hidden = true;
} else {
  tenant = found.body;
  showTenant();
  await Promise.all([loadKeys(), loadUsage()]);
}
