// The audit log, newest first, filtered by tenant and actor, one page at a time.
import { api, el, fill, say, showErrors, table, when, clearErrors } from './common.js';

const form = document.getElementById('filter');
const list = document.getElementById('list');
const next = document.getElementById('next');
const first = document.getElementById('first');
const initial = new URLSearchParams(location.search);
form.tenant.value = initial.get('tenant') ?? '';
form.actor.value = initial.get('actor') ?? '';
let cursor;

const change = (r) =>
  r.before === null && r.after === null
    ? ''
    : el(
        'details',
        {},
        el('summary', {}, 'Change'),
        r.before !== null ? el('pre', {}, `before: ${JSON.stringify(r.before, null, 2)}`) : null,
        r.after !== null ? el('pre', {}, `after: ${JSON.stringify(r.after, null, 2)}`) : null,
      );

async function load() {
  clearErrors(document.body);
  const params = new URLSearchParams({ limit: '50' });
  if (form.tenant.value.trim()) params.set('tenant', form.tenant.value.trim());
  if (form.actor.value.trim()) params.set('actor', form.actor.value.trim());
  if (cursor) params.set('cursor', cursor);
  const res = await api('GET', `/v1/audit?${params}`);
  if (!res.ok) return showErrors(document.body, res);
  say('');
  fill(
    list,
    table(
      'Audit log',
      [
        { label: 'When', cell: (r) => when(r.at) },
        { label: 'Actor', cell: (r) => r.actor },
        { label: 'Action', cell: (r) => r.action },
        { label: 'Resource', cell: (r) => r.resource },
        { label: 'Change', cell: change },
      ],
      res.body.items,
      'No entries.',
    ),
  );
  next.hidden = !res.body.next_cursor;
  next.dataset.cursor = res.body.next_cursor ?? '';
  first.hidden = !cursor;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  cursor = undefined;
  const params = new URLSearchParams();
  if (form.tenant.value.trim()) params.set('tenant', form.tenant.value.trim());
  if (form.actor.value.trim()) params.set('actor', form.actor.value.trim());
  history.replaceState(null, '', params.size ? `?${params}` : location.pathname);
  load();
});
next.addEventListener('click', () => {
  cursor = next.dataset.cursor;
  load();
});
first.addEventListener('click', () => {
  cursor = undefined;
  load();
});

await load();
