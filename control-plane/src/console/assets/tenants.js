// Tenants: search, pages of summaries, and onboarding a new tenant.
import { api, clearErrors, cost, el, fill, oneAtATime, say, showErrors, table, when } from './common.js';

const list = document.getElementById('list');
const search = document.getElementById('search');
const first = document.getElementById('first');
const next = document.getElementById('next');
let query = new URLSearchParams(location.search).get('q') ?? '';
let cursor;

async function load() {
  const params = new URLSearchParams({ limit: '25' });
  if (query) params.set('q', query);
  if (cursor) params.set('cursor', cursor);
  const res = await api('GET', `/tenants?${params}`);
  if (!res.ok) return say(res.body?.error?.message ?? `Could not load tenants (HTTP ${res.status}).`, true);
  fill(
    list,
    table(
      query ? `Tenants matching "${query}"` : 'Tenants',
      [
        {
          label: 'Tenant',
          cell: (t) => el('a', { href: `/console/tenants/${encodeURIComponent(t.id)}` }, t.id),
        },
        { label: 'Plan', cell: (t) => t.plan },
        { label: 'Status', cell: (t) => t.status },
        {
          label: 'Cost this month',
          cell: (t) => cost(t.cost_month_usd, t.unpriced_month_requests),
          num: true,
        },
        { label: 'Last request', cell: (t) => when(t.last_request_at) },
      ],
      res.body.items,
      query ? 'No tenant matches.' : 'No tenants yet.',
    ),
  );
  next.hidden = !res.body.next_cursor;
  next.dataset.cursor = res.body.next_cursor ?? '';
  first.hidden = !cursor;
}

search.q.value = query;
search.addEventListener('submit', (event) => {
  event.preventDefault();
  query = search.q.value.trim();
  cursor = undefined;
  history.replaceState(null, '', query ? `?q=${encodeURIComponent(query)}` : location.pathname);
  load();
});
next.addEventListener('click', () => {
  cursor = next.dataset.cursor;
  load().then(() => list.querySelector('a')?.focus());
});
first.addEventListener('click', () => {
  cursor = undefined;
  load();
});

const create = document.getElementById('create');
const plans = await api('GET', '/v1/plans?limit=500');
if (plans.ok)
  fill(
    create.plan,
    plans.body.items.map((p) => el('option', { value: p.id }, p.id)),
  );
// A new install has no plan: say so, rather than an empty list and a refusal about the
// plan id's characters.
if (plans.ok && plans.body.items.length === 0) {
  create.plan.disabled = true;
  for (const button of create.querySelectorAll('button')) button.disabled = true;
  create.append(
    el(
      'p',
      { id: 'no-plans' },
      'No plans yet: a tenant needs one. ',
      el('a', { href: '/console/plans' }, 'Create a plan'),
      ' first.',
    ),
  );
}
create.addEventListener(
  'submit',
  oneAtATime(create, async () => {
    clearErrors(create);
    const res = await api('POST', '/v1/tenants', {
      id: create.querySelector('[name="id"]').value.trim(),
      plan: create.plan.value,
    });
    if (!res.ok) return showErrors(create, res);
    location.assign(`/console/tenants/${encodeURIComponent(res.body.id)}`);
  }),
);

await load();
