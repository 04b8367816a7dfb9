/**
 * What /metrics says after a reload, from a review of the metrics: the token rule holds for
 * the admin listener that runs (its address applies only at a restart), and an upstream the
 * reload removed leaves lanekeeper_upstream_up, rather than firing its ejection alert for ever.
 */
import { describe, expect, it } from 'vitest';
import { startFakeUpstream } from './helpers/fake-upstream.js';
import { KEYS, metricValue, startHarness, withUpstreamsAB } from './helpers/harness.js';
import { REFUSING_UPSTREAM } from './helpers/waiting.js';

const TOKEN = 'metrics-token-0123456789abcdef';

/** Upstreams a (the harness's) and b (at `bUrl`, ejected at its first failure), b behind the free plan's alias "bee". */
function bOnAlias(base: Record<string, unknown>, bUrl: string): Record<string, unknown> {
  const raw = withUpstreamsAB(base, bUrl, { b: { eject_after: 1 } });
  const plans = raw.plans as Record<string, Record<string, unknown>>;
  raw.plans = {
    free: { ...plans.free, models: { default: 'a-model', bee: 'b-model' } },
    pro: { ...plans.pro, models: { default: 'a-model' } },
  };
  return raw;
}

describe('a reload and /metrics', () => {
  it('refuses to drop the metrics token while the admin listener still runs off loopback', async () => {
    let raw: Record<string, unknown> = {};
    const h = await startHarness({
      config: (base) => (raw = { ...base, admin_listen: '0.0.0.0:0', metrics_token: TOKEN }),
    });
    try {
      const metrics = (token?: string) =>
        fetch(`${h.proxy.adminUrl}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
      expect((await metrics()).status).toBe(401);
      const { metrics_token: _dropped, ...withoutToken } = raw;
      // The new address is loopback, so the file alone passes; the listener that runs is not.
      await expect(h.proxy.reload({ ...withoutToken, admin_listen: '127.0.0.1:0' })).rejects.toThrow(
        /admin listener runs on 0\.0\.0\.0/,
      );
      expect((await metrics()).status).toBe(401);
      expect((await metrics(TOKEN)).status).toBe(200);
      // With the token kept, the same reload applies (the address waits for a restart)...
      await h.proxy.reload({ ...raw, admin_listen: '127.0.0.1:0' });
      expect((await metrics()).status).toBe(401);
      // ...and a second reload, from that one, may still not drop the token: the listener
      // that runs is the one the proxy started with, not the last reload's.
      await expect(h.proxy.reload({ ...withoutToken, admin_listen: '127.0.0.1:0' })).rejects.toThrow(
        /admin listener runs on 0\.0\.0\.0/,
      );
      expect((await metrics()).status).toBe(401);
    } finally {
      await h.close();
    }
  });

  it('forgets the health of an upstream the reload removed', async () => {
    let raw: Record<string, unknown> = {};
    const h = await startHarness({
      config: (base) => (raw = bOnAlias(base, REFUSING_UPSTREAM)),
    });
    try {
      const ask = async (model: string) => {
        const res = await fetch(`${h.proxy.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
        });
        await res.arrayBuffer();
        return res.status;
      };
      expect(await ask('default')).toBe(200);
      expect(await ask('bee')).toBe(502);
      const scrape = async () => (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
      expect(metricValue(await scrape(), 'lanekeeper_upstream_up', { upstream: 'b' })).toBe(0);

      const { b: _removed, ...upstreams } = raw.upstreams as Record<string, unknown>;
      const plans = raw.plans as Record<string, Record<string, unknown>>;
      await h.proxy.reload({
        ...raw,
        upstreams,
        plans: { ...plans, free: { ...plans.free, models: { default: 'a-model' } } },
      });
      const after = await scrape();
      expect(metricValue(after, 'lanekeeper_upstream_up', { upstream: 'b' })).toBeUndefined();
      expect(metricValue(after, 'lanekeeper_upstream_up', { upstream: 'a' })).toBe(1);
    } finally {
      await h.close();
    }
  });

  it('does not bring back a removed upstream when a call still running on it fails', async () => {
    const b = await startFakeUpstream({ kind: 'hang' });
    let raw: Record<string, unknown> = {};
    const h = await startHarness({
      config: (base) => (raw = bOnAlias(base, b.url)),
    });
    try {
      const inFlight = fetch(`${h.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bee', messages: [{ role: 'user', content: 'hi' }] }),
      });
      for (let i = 0; i < 200 && b.received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(b.received).toHaveLength(1);
      const { b: _removed, ...upstreams } = raw.upstreams as Record<string, unknown>;
      const plans = raw.plans as Record<string, Record<string, unknown>>;
      await h.proxy.reload({
        ...raw,
        upstreams,
        plans: { ...plans, free: { ...plans.free, models: { default: 'a-model' } } },
      });
      // The call on the removed upstream now fails.
      await b.close();
      const res = await inFlight;
      await res.arrayBuffer();
      expect(res.status).toBeGreaterThanOrEqual(500);
      const text = await (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
      expect(metricValue(text, 'lanekeeper_upstream_up', { upstream: 'b' })).toBeUndefined();
    } finally {
      await h.close();
    }
  });
});
