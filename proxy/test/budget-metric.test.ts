/**
 * lanekeeper_budget_usd publishes each tenant's spend budgets through the real /metrics, so
 * the chart's budget alert can divide spend (lanekeeper_cost_usd_total) by it. It follows
 * plan reloads, and never labels "_other" (many tenants, many budgets) with one figure.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion } from './helpers/fake-upstream.js';
import { baseConfig, KEYS, metricValue, startHarness, type Harness } from './helpers/harness.js';

let h: Harness;

function withBudgets(base: Record<string, unknown>, pro: Record<string, number>): Record<string, unknown> {
  const plans = base.plans as Record<string, Record<string, unknown>>;
  return {
    ...base,
    metrics: { max_tenants: 2 },
    plans: { ...plans, pro: { ...plans.pro, rate_limits: pro } },
  };
}

beforeAll(async () => {
  h = await startHarness({
    reply: () => ({
      kind: 'json',
      body: chatCompletion('small-model', 'ok', {
        prompt_tokens: 10,
        completion_tokens: 20,
        total_tokens: 30,
      }),
    }),
    config: (base) => withBudgets(base, { budget_usd_per_day: 5, budget_usd_per_month: 120.5 }),
  });
});
afterAll(() => h.close());

async function chat(key: string): Promise<number> {
  const res = await request(`${h.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.text();
  return res.statusCode;
}

const metrics = async () => (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
const budget = (text: string, tenant: string, window: string) =>
  metricValue(text, 'lanekeeper_budget_usd', { tenant, window });

describe('lanekeeper_budget_usd', () => {
  it("shows a tenant's day and month budgets once it has made a request, and none for a plan without", async () => {
    expect(budget(await metrics(), 'globex', 'day')).toBeUndefined();
    expect(await chat(KEYS.pro)).toBe(200);
    expect(await chat(KEYS.free)).toBe(200);
    const text = await metrics();
    expect(text).toContain('# TYPE lanekeeper_budget_usd gauge');
    expect(budget(text, 'globex', 'day')).toBe(5);
    expect(budget(text, 'globex', 'month')).toBe(120.5);
    // acme's plan limits requests only: no budget series, so the alert's division finds nothing.
    expect(text).not.toMatch(/lanekeeper_budget_usd\{[^}]*tenant="acme"/);
  });

  it('never gives the "_other" tenant label a budget', async () => {
    // max_tenants is 2 and acme and globex hold both labels: hooli is counted as "_other".
    expect(await chat(KEYS.pro2)).toBe(200);
    const text = await metrics();
    expect(text).toContain('tenant="_other"');
    expect(text).not.toMatch(/lanekeeper_budget_usd\{[^}]*tenant="_other"/);
  });

  it('does not count an overflowing tenant twice in lanekeeper_tenant_label_overflow_total', async () => {
    const overflow = async () =>
      metricValue(await metrics(), 'lanekeeper_tenant_label_overflow_total', {}) ?? 0;
    // One observation per metered request (meter-usage), budget or not.
    for (const limits of [{}, { budget_usd_per_day: 5 }] as Record<string, number>[]) {
      await h.proxy.reload(withBudgets(baseConfig(h.upstream.url), limits));
      const before = await overflow();
      const lines = h.accessLogs().length;
      expect(await chat(KEYS.pro2)).toBe(200);
      await h.settled(lines + 1);
      expect((await overflow()) - before).toBe(1);
    }
  });

  it('follows a reload: a changed budget is replaced and a removed one disappears', async () => {
    await h.proxy.reload(withBudgets(baseConfig(h.upstream.url), { budget_usd_per_day: 7.25 }));
    expect(await chat(KEYS.pro)).toBe(200);
    const text = await metrics();
    expect(budget(text, 'globex', 'day')).toBe(7.25);
    expect(budget(text, 'globex', 'month')).toBeUndefined();
  });

  it("follows a reload at once, before the tenant's next request", async () => {
    await h.proxy.reload(withBudgets(baseConfig(h.upstream.url), { budget_usd_per_day: 9 }));
    expect(budget(await metrics(), 'globex', 'day')).toBe(9);
    await h.proxy.reload(withBudgets(baseConfig(h.upstream.url), {}));
    const text = await metrics();
    expect(budget(text, 'globex', 'day')).toBeUndefined();
    expect(budget(text, 'globex', 'month')).toBeUndefined();
  });
});
