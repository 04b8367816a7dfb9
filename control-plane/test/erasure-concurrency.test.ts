/**
 * Two erasures of one tenant at once: one runs, the other is refused with 409, on PostgreSQL
 * (session advisory lock) and on the embedded database, where every connection is the same
 * session and only the control plane's own guard excludes the second.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { startSeeded, stopSeeded } from './helpers/seeded.js';
import type { TestEnv } from './helpers/test-env.js';

let t: TestEnv;
let cp: RunningControlPlane;
const admin = (method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });

beforeAll(async () => {
  // A propagation wait long enough that the two requests surely overlap.
  ({ t, cp } = await startSeeded({ extra: { LANEKEEPER_ERASURE_PROPAGATION_MS: '500' }, tenants: ['acme'] }));
});
afterAll(() => stopSeeded({ t, cp }));

describe('concurrent erasure', () => {
  it('runs one erasure of a tenant and refuses the other with 409', async () => {
    const [a, b] = await Promise.all([
      admin('DELETE', '/v1/tenants/acme'),
      admin('DELETE', '/v1/tenants/acme'),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const refused = a.status === 409 ? a : b;
    expect(refused.body.error.message).toContain('being erased by another request');
    expect((await admin('GET', '/v1/tenants/acme')).status).toBe(404);
  });
});
