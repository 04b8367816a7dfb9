// Usage export: checks the range with the server, then saves the CSV it answers.
import { clearErrors, say, showErrors } from './common.js';

const form = document.getElementById('export-form');
const today = new Date().toISOString().slice(0, 10);
form.to.value ||= today;
form.from.value ||= `${today.slice(0, 8)}01`;
const initial = new URLSearchParams(location.search).get('tenant');
if (initial) form.tenant.value = initial;

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors(form);
  const params = new URLSearchParams({
    tenant: form.tenant.value.trim(),
    from: form.from.value,
    to: form.to.value,
  });
  const res = await fetch(`/console/api/export.csv?${params}`, { credentials: 'same-origin' });
  if (res.status === 401) return location.assign('/console/login');
  if (!res.ok) {
    let body;
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
    return showErrors(form, { status: res.status, body });
  }
  const blob = await res.blob();
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = `usage-${params.get('tenant')}-${params.get('from')}-${params.get('to')}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  say(`Exported ${params.get('tenant')}'s usage from ${params.get('from')} to ${params.get('to')}.`);
});
