// Shared by every console page: the API client (session cookie + CSRF header), a DOM
// builder that only ever sets textContent, tables, field errors and number formats.

const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';

/** Calls the console API; answers {ok, status, body}. A lost session goes back to sign-in. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/console/api${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (res.status === 401) {
    location.assign('/console/login');
    return { ok: false, status: 401, body: undefined };
  }
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { ok: res.ok, status: res.status, body: parsed };
}

/** Builds an element; strings among the children become text nodes, never markup. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A table: columns are {label, cell(row), num?}. An empty list says so instead. */
export function table(caption, columns, rows, empty = 'Nothing yet.', { captionShown = true } = {}) {
  if (rows.length === 0) return el('p', {}, empty);
  return el(
    'table',
    {},
    // A caption that repeats the section's heading stays for screen readers only.
    el('caption', captionShown ? {} : { class: 'visually-hidden' }, caption),
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        columns.map((c) => el('th', { scope: 'col', class: c.num ? 'num' : undefined }, c.label)),
      ),
    ),
    el(
      'tbody',
      {},
      rows.map((r) =>
        el(
          'tr',
          {},
          columns.map((c) => el('td', { class: c.num ? 'num' : undefined }, c.cell(r))),
        ),
      ),
    ),
  );
}

/** Replaces a container's content. */
export function fill(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null));
}

/** The page's status line (an aria-live region). */
export function say(message, isError = false) {
  const status = document.getElementById('status');
  status.textContent = message;
  status.classList.toggle('error', isError);
}

/** Clears a form's field errors. */
export function clearErrors(form) {
  for (const p of form.querySelectorAll('[data-error-for]')) {
    p.hidden = true;
    p.textContent = '';
  }
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

/**
 * Shows an API error next to the fields it names (`body.rate_limits.x` → the input named
 * `rate_limits.x`, or the nearest enclosing one), the rest in the form's general slot.
 */
export function showErrors(form, response) {
  clearErrors(form);
  const error = response.body?.error;
  const details =
    Array.isArray(error?.details) && error.details.length
      ? error.details
      : [{ field: '', message: error?.message ?? `failed (HTTP ${response.status})` }];
  const slots = [...form.querySelectorAll('[data-error-for]')];
  let first;
  for (const d of details) {
    const field = String(d.field ?? '').replace(/^(body|querystring|params)\.?/, '');
    const own =
      slots.find((s) => s.dataset.errorFor === field && field !== '') ??
      slots.find((s) => s.dataset.errorFor !== '' && field.startsWith(`${s.dataset.errorFor}.`)) ??
      slots.find(
        (s) => s.dataset.errorFor !== '' && s.dataset.errorFor.startsWith(`${field}.`) && field !== '',
      );
    // A field with no input of its own (typed into a form's free JSON box, say): said beside
    // that box, with its name, not in the general slot where "must be > 0" named nothing.
    const other =
      !own && field !== '' && form.dataset.otherFields
        ? slots.find((s) => s.dataset.errorFor === form.dataset.otherFields)
        : undefined;
    const slot = own ?? other ?? slots.find((s) => s.dataset.errorFor === '');
    if (!slot) continue;
    const message = other ? `${field}: ${d.message}` : String(d.message);
    slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    slot.hidden = false;
    const input = slot.dataset.errorFor
      ? form.querySelector(`[name="${CSS.escape(slot.dataset.errorFor)}"]`)
      : null;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      first ??= input;
    }
  }
  (first ?? form.querySelector('input, select, textarea'))?.focus();
  say(error?.message ?? 'The change was refused.', true);
}

/**
 * Runs `handler` for an event unless the last run for `control` (a button, or a form whose
 * submit buttons) is still going, with the control disabled meanwhile. A double click made
 * two keys of which only the second was shown, the first working and never seen, and two
 * identical price versions.
 */
export function oneAtATime(control, handler) {
  const buttons = () =>
    control instanceof HTMLFormElement
      ? [...control.querySelectorAll('button[type="submit"], button:not([type])')]
      : [control];
  let running = false;
  return async (event) => {
    if (control instanceof HTMLFormElement) event?.preventDefault();
    if (running) return;
    running = true;
    const disabled = buttons().filter((b) => !b.disabled);
    for (const b of disabled) b.disabled = true;
    try {
      await handler(event);
    } finally {
      running = false;
      for (const b of disabled) b.disabled = false;
    }
  };
}

/** Dollars: cents for ordinary sums, three significant digits for the tiny costs of single requests. */
export function usd(value) {
  const n = Number(value);
  if (n === 0 || Math.abs(n) >= 0.01)
    return `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  return `$${n.toFixed(Math.min(12, 2 - Math.floor(Math.log10(Math.abs(n)))))}`;
}
export const int = (n) => Number(n).toLocaleString('en-US');
/**
 * A cost with the requests it leaves out: a model without a price is booked with no cost,
 * never $0, and shown alone as $0.00 it read as free usage.
 */
export const cost = (value, unpriced) =>
  Number(unpriced) > 0 ? `${usd(value)} + ${int(unpriced)} unpriced` : usd(value);
export const when = (iso) =>
  iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : '—';
