/**
 * Tenants come and go while a proxy runs. The places under metrics.max_tenants, and the
 * series, of a tenant the config no longer has are freed when the config changes: kept, a
 * long-running proxy counted every newer tenant as "_other" and exported tenants that no
 * longer existed until it restarted.
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { chatCompletion } from './helpers/fake-upstream.js';
import { baseConfig, KEYS, metricValue, startHarness, type Harness } from './helpers/harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const USAGE = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };

async function chat(key: string): Promise<number> {
  const res = await request(`${h.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.text();
  return res.statusCode;
}

const metrics = async () => (await fetch(`${h.proxy.adminUrl}/metrics`)).text();

describe('metric labels across config changes', () => {
  it("free a removed tenant's place and series for the tenants that remain or come", async () => {
    const withMax = (base: Record<string, unknown>): Record<string, unknown> => ({
      ...base,
      metrics: { max_tenants: 2 },
    });
    h = await startHarness({
      reply: { kind: 'json', body: chatCompletion('small-model', 'ok', USAGE) },
      config: withMax,
    });
    // acme and globex take both places; hooli is counted as _other.
    for (const key of [KEYS.free, KEYS.pro, KEYS.pro2]) expect(await chat(key)).toBe(200);
    await h.settled(3);
    const before = await metrics();
    expect(metricValue(before, 'lanekeeper_requests_total', { tenant: 'acme' })).toBe(1);
    expect(metricValue(before, 'lanekeeper_requests_total', { tenant: 'hooli' })).toBeUndefined();
    expect(metricValue(before, 'lanekeeper_requests_total', { tenant: '_other' })).toBe(1);

    // acme leaves.
    const next = withMax(baseConfig(h.upstream.url)) as { tenants: { id: string }[] };
    next.tenants = next.tenants.filter((t) => t.id !== 'acme');
    await h.proxy.reload(next);
    expect(await chat(KEYS.pro2)).toBe(200);
    await h.settled(4);
    const after = await metrics();
    expect(after).not.toMatch(/tenant="acme"/);
    expect(metricValue(after, 'lanekeeper_requests_total', { tenant: 'hooli' })).toBe(1);
    expect(metricValue(after, 'lanekeeper_requests_total', { tenant: 'globex' })).toBe(1);
    // The earlier _other count stays: it is a counter, and hooli's first request is in it.
    expect(metricValue(after, 'lanekeeper_requests_total', { tenant: '_other' })).toBe(1);
  });
});
