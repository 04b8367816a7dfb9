/**
 * Rotating the proxy token. With one token, rotating it left a window where the proxies not
 * yet moved were refused their config, and with it every change (found by review): a key
 * revoked meanwhile was not revoked there. LANEKEEPER_PROXY_TOKEN_PREVIOUS is taken too
 * while the proxies move, on the proxies' routes only.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from './helpers/http.js';
import { startSeeded, stopSeeded, type Seeded } from './helpers/seeded.js';

const previous = `proxy-old-${randomBytes(16).toString('hex')}`;
let s: Seeded;

beforeAll(async () => {
  s = await startSeeded({
    extra: { LANEKEEPER_LEDGER_ENABLED: 'false', LANEKEEPER_PROXY_TOKEN_PREVIOUS: previous },
  });
});
afterAll(() => stopSeeded(s ?? {}));

describe('LANEKEEPER_PROXY_TOKEN_PREVIOUS', () => {
  it('is taken beside the proxy token on the proxies routes, and nowhere else', async () => {
    for (const token of [s.t.proxyToken, previous])
      expect((await call(s.cp.url, 'GET', '/v1/config', { token })).status).toBe(200);
    for (const token of [s.t.adminToken, `${previous}x`, previous.slice(0, -1)])
      expect((await call(s.cp.url, 'GET', '/v1/config', { token })).status).toBe(401);
    expect((await call(s.cp.url, 'GET', '/v1/tenants', { token: previous })).status).toBe(401);
  });
});
