// Plans: the list, and one form that creates a plan or edits the one picked from the list.
import { api, clearErrors, el, fill, int, oneAtATime, say, showErrors, table } from './common.js';

const form = document.getElementById('plan-form');
const input = (name) => form.querySelector(`[name="${name}"]`);
const LIMITS = [
  'requests_per_minute',
  'tokens_per_hour',
  'max_concurrent',
  'budget_usd_per_day',
  'budget_usd_per_month',
];
const SHOWN = ['id', 'created_at', 'updated_at', 'rate_limits', 'max_output_tokens'];
let editing;

function limitsText(p) {
  const r = p.rate_limits ?? {};
  const parts = [];
  if (r.requests_per_minute) parts.push(`${int(r.requests_per_minute)} req/min`);
  if (r.tokens_per_hour) parts.push(`${int(r.tokens_per_hour)} tokens/h`);
  if (r.max_concurrent) parts.push(`${r.max_concurrent} concurrent`);
  if (r.budget_usd_per_day) parts.push(`$${r.budget_usd_per_day}/day`);
  if (r.budget_usd_per_month) parts.push(`$${r.budget_usd_per_month}/month`);
  return parts.join(', ') || 'unlimited';
}

async function load() {
  const res = await api('GET', '/v1/plans?limit=500');
  if (!res.ok) return say(`Could not load plans (HTTP ${res.status}).`, true);
  fill(
    document.getElementById('list'),
    table(
      'Plans',
      [
        { label: 'Plan', cell: (p) => p.id },
        { label: 'Default model', cell: (p) => [p.models.default].flat().join(' → ') },
        { label: 'Limits', cell: (p) => limitsText(p) },
        { label: 'Max output tokens', cell: (p) => int(p.max_output_tokens), num: true },
        {
          label: 'Action',
          cell: (p) =>
            el(
              'button',
              { type: 'button', 'aria-label': `Edit plan ${p.id}`, onclick: () => edit(p) },
              'Edit',
            ),
        },
      ],
      res.body.items,
      'No plans yet.',
    ),
  );
}

function edit(plan) {
  editing = plan.id;
  clearErrors(form);
  document.getElementById('edit-h').textContent = `Edit plan ${plan.id}`;
  document.getElementById('save').textContent = 'Save plan';
  input('id').value = plan.id;
  input('id').readOnly = true;
  const { default: defaultModel, ...aliases } = plan.models;
  input('models.default').value =
    typeof defaultModel === 'string' ? defaultModel : JSON.stringify(defaultModel);
  for (const limit of LIMITS) input(`rate_limits.${limit}`).value = plan.rate_limits?.[limit] ?? '';
  input('max_output_tokens').value = plan.max_output_tokens ?? '';
  const rest = Object.fromEntries(Object.entries(plan).filter(([k]) => !SHOWN.includes(k) && k !== 'models'));
  if (Object.keys(aliases).length) rest.models = aliases;
  input('rest').value = JSON.stringify(rest, null, 2);
  input('models.default').focus();
}

function reset() {
  editing = undefined;
  form.reset();
  clearErrors(form);
  input('id').readOnly = false;
  document.getElementById('edit-h').textContent = 'New plan';
  document.getElementById('save').textContent = 'Create plan';
}

/** Shows a problem found before sending, next to its field, as the API's own would be. */
function localError(field, message) {
  showErrors(form, {
    status: 400,
    body: { error: { message: `${field}: ${message}`, details: [{ field, message }] } },
  });
}

/** The request body from the form, or undefined after showing what is wrong locally. */
function bodyOf() {
  let rest = {};
  const text = input('rest').value.trim();
  if (text) {
    try {
      rest = JSON.parse(text);
    } catch (error) {
      rest = undefined;
      localError('rest', `not valid JSON: ${error.message}`);
    }
    if (rest !== undefined && (rest === null || typeof rest !== 'object' || Array.isArray(rest))) {
      localError('rest', 'must be a JSON object');
      rest = undefined;
    }
  }
  if (rest === undefined) return undefined;
  const models = { ...(rest.models ?? {}) };
  const defaultModel = input('models.default').value.trim();
  if (defaultModel) {
    // A fallback list is written as JSON (["a", "b"]); a typo in it is said here, not thrown.
    try {
      models.default = defaultModel.startsWith('[') ? JSON.parse(defaultModel) : defaultModel;
    } catch (error) {
      localError('models.default', `a fallback list is a JSON array of model names: ${error.message}`);
      return undefined;
    }
  }
  const rateLimits = {};
  for (const limit of LIMITS) {
    const value = input(`rate_limits.${limit}`).value;
    if (value !== '') rateLimits[limit] = Number(value);
  }
  const body = { ...rest, models, rate_limits: rateLimits };
  const maxOutput = input('max_output_tokens').value;
  if (maxOutput !== '') body.max_output_tokens = Number(maxOutput);
  return body;
}

form.addEventListener(
  'submit',
  oneAtATime(form, async () => {
    clearErrors(form);
    const body = bodyOf();
    if (!body) return;
    // An edit replaces the plan whole (PUT), as the form shows all of it: a PATCH kept every
    // field taken off in the form (max_context, a system prompt) while saying "saved".
    const res = editing
      ? await api('PUT', `/v1/plans/${encodeURIComponent(editing)}`, body)
      : await api('POST', '/v1/plans', { id: input('id').value.trim(), ...body });
    if (!res.ok) return showErrors(form, res);
    say(editing ? `Plan ${res.body.id} saved.` : `Plan ${res.body.id} created.`);
    reset();
    await load();
  }),
);
document.getElementById('new-plan').addEventListener('click', reset);

await load();
