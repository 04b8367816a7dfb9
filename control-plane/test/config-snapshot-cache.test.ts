/**
 * GET /v1/config as a fleet asks for it: every proxy at once, after each change. A version's
 * snapshot is read from the database once and its bytes go to every proxy; a change makes
 * the next request read the new one. (Built for each proxy, a 10,000-tenant snapshot took
 * 3.2 s to reach the last of 30 proxies.)
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type * as tenantsStore from '../src/stores/tenants.js';
import { configTenants } from '../src/stores/tenants.js';
import { call } from './helpers/http.js';
import { startSeeded, stopSeeded } from './helpers/seeded.js';
import type { TestEnv } from './helpers/test-env.js';

// A pass-through spy: the reads are the real ones; the test counts them.
vi.mock('../src/stores/tenants.js', async (original) => {
  const real = await original<typeof tenantsStore>();
  return { ...real, configTenants: vi.fn(real.configTenants) };
});

let t: TestEnv;
let cp: { url: string; close(): Promise<void> };

beforeAll(async () => {
  const tenants = Array.from({ length: 50 }, (_, i) => `t-${i}`);
  ({ t, cp } = await startSeeded({ extra: { LANEKEEPER_LEDGER_ENABLED: 'false' }, tenants }));
});
afterAll(() => stopSeeded({ t, cp }));

async function snapshot(headers: Record<string, string> = {}) {
  const res = await fetch(`${cp.url}/v1/config`, {
    headers: { authorization: `Bearer ${t.proxyToken}`, ...headers },
  });
  return {
    status: res.status,
    etag: res.headers.get('etag'),
    type: res.headers.get('content-type'),
    text: await res.text(),
  };
}

describe('the config snapshot', () => {
  it('is read once per version, however many proxies ask at once, and read again after a change', async () => {
    const reads = vi.mocked(configTenants);
    reads.mockClear();
    const fleet = await Promise.all(Array.from({ length: 20 }, () => snapshot()));
    expect(reads).toHaveBeenCalledTimes(1);
    for (const answer of fleet) {
      expect(answer.status).toBe(200);
      expect(answer.type).toContain('application/json');
      expect(answer.text).toBe(fleet[0]!.text);
      expect(answer.etag).toBe(fleet[0]!.etag);
    }
    const first = JSON.parse(fleet[0]!.text);
    expect(first.tenants).toHaveLength(50);
    expect(fleet[0]!.etag).toMatch(new RegExp(`^"${first.version}-[0-9a-f]{16}"$`));
    expect((await snapshot({ 'if-none-match': fleet[0]!.etag! })).status).toBe(304);

    const suspended = await call(cp.url, 'PATCH', '/v1/tenants/t-7', {
      token: t.adminToken,
      body: { status: 'suspended' },
    });
    expect(suspended.status).toBe(200);
    const after = await Promise.all(
      Array.from({ length: 5 }, () => snapshot({ 'if-none-match': fleet[0]!.etag! })),
    );
    expect(reads).toHaveBeenCalledTimes(2);
    for (const answer of after) {
      expect(answer.status).toBe(200);
      const next = JSON.parse(answer.text);
      expect(next.version).toBeGreaterThan(first.version);
      expect(next.tenants.find((x: { id: string }) => x.id === 't-7').status).toBe('suspended');
    }
  });

  // A database restored from a backup, or a failover to a lagging standby: the counter goes
  // back, then up to a number it had, with other content. The cache served the newer
  // snapshot until the counter passed it, and a proxy holding the number got 304.
  it('follows the version when it goes back, and never answers 304 for other content', async () => {
    const held = await snapshot();
    const version = JSON.parse(held.text).version as number;
    // The restore: one version back, t-12 suspended in it.
    await t.pool.query(`UPDATE config_version SET version = version - 1 WHERE id = 1`);
    await t.pool.query(`UPDATE tenants SET status = 'suspended' WHERE id = 't-12'`);
    const back = await snapshot({ 'if-none-match': held.etag! });
    expect(back.status).toBe(200);
    expect(JSON.parse(back.text)).toMatchObject({ version: version - 1 });
    // Up to the number the proxy holds again, its content other than what it holds.
    await t.pool.query(`UPDATE config_version SET version = version + 1 WHERE id = 1`);
    const again = await snapshot({ 'if-none-match': held.etag! });
    expect(again.status).toBe(200);
    const content = JSON.parse(again.text);
    expect(content.version).toBe(version);
    expect(content.tenants.find((x: { id: string }) => x.id === 't-12').status).toBe('suspended');
    expect(again.etag).not.toBe(held.etag);
  });
});
