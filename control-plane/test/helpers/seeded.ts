/**
 * The world most control-plane test files start from: a private test env (test-env.ts), a
 * control plane on it, the `free` plan (default model `m`) and a few tenants on that plan,
 * each created through the admin API as an operator would, and checked: a seed that failed
 * would otherwise surface as a confusing failure in some later test.
 */
import { startControlPlane, type RunningControlPlane } from '../../src/main.js';
import { call } from './http.js';
import { createTestEnv, type TestEnv } from './test-env.js';

export interface Seeded {
  t: TestEnv;
  cp: RunningControlPlane;
}

export async function startSeeded(
  opts: { extra?: NodeJS.ProcessEnv; tenants?: readonly string[] } = {},
): Promise<Seeded> {
  const t = await createTestEnv({ extra: opts.extra });
  const cp = await startControlPlane(t.env);
  const create = async (path: string, body: unknown) => {
    const res = await call(cp.url, 'POST', path, { token: t.adminToken, body });
    if (res.status !== 201)
      throw new Error(`seeding ${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
  };
  await create('/v1/plans', { id: 'free', models: { default: 'm' } });
  for (const id of opts.tenants ?? []) await create('/v1/tenants', { id, plan: 'free' });
  return { t, cp };
}

/** Closes what startSeeded opened, whichever parts of it did open. */
export async function stopSeeded(seeded: Partial<Seeded>): Promise<void> {
  await seeded.cp?.close();
  await seeded.t?.dispose();
}
