/**
 * LANEKEEPER_UPSTREAM_MODELS: with it set, the admin API refuses a plan or tenant override
 * naming a model no upstream serves (the proxies would refuse the snapshot), naming the
 * field, the plan or tenant, the alias and the id; nothing is written. Without it, any id
 * passes, as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ControlPlaneConfigError } from '../src/errors.js';
import { startControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';

let t: TestEnv;
let cp: { url: string; close(): Promise<void> };

beforeAll(async () => {
  t = await createTestEnv({ extra: { LANEKEEPER_UPSTREAM_MODELS: 'gpt-*, claude-*,deepseek-chat' } });
  cp = await startControlPlane(t.env);
});
afterAll(async () => {
  await cp?.close();
  await t?.dispose();
});

const admin = (method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });

describe('LANEKEEPER_UPSTREAM_MODELS', () => {
  it('accepts plans whose every model (fallback lists included) an upstream serves', async () => {
    const res = await admin('POST', '/v1/plans', {
      id: 'pro',
      models: { default: 'deepseek-chat', coding: ['claude-sonnet-4-6', 'gpt-5.5-instant'] },
    });
    expect(res.status).toBe(201);
  });

  it('refuses a plan naming a model no upstream serves, with the plan, alias and id, and writes nothing', async () => {
    const res = await admin('POST', '/v1/plans', {
      id: 'free',
      models: { default: 'gpt-5-mini', fast: ['claude-haiku', 'gemini-3-flash'] },
    });
    expect(res.status).toBe(400);
    const body = res.body as { error: { message: string; details?: { field: string; message: string }[] } };
    expect(body.error.details).toEqual([
      {
        field: 'body.models.fast',
        message:
          'plan "free", alias "fast": no upstream serves model "gemini-3-flash" (it matches none of LANEKEEPER_UPSTREAM_MODELS)',
      },
    ]);
    expect((await admin('GET', '/v1/plans/free')).status).toBe(404);
  });

  it('refuses a plan edit that would name one, and keeps the plan as it was', async () => {
    const res = await admin('PATCH', '/v1/plans/pro', { models: { default: 'llama-4' } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('no upstream serves model \\"llama-4\\"');
    expect(((await admin('GET', '/v1/plans/pro')).body as { models: unknown }).models).toMatchObject({
      default: 'deepseek-chat',
    });
  });

  it("refuses a tenant override's unserved model, on create and on edit", async () => {
    const bad = await admin('POST', '/v1/tenants', {
      id: 'acme',
      plan: 'pro',
      overrides: { models: { local: 'qwen3' } },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('body.overrides.models.local');
    expect((await admin('POST', '/v1/tenants', { id: 'acme', plan: 'pro' })).status).toBe(201);
    const edit = await admin('PATCH', '/v1/tenants/acme', { overrides: { models: { x: 'mistral-large' } } });
    expect(edit.status).toBe(400);
    expect(JSON.stringify(edit.body)).toContain('tenant \\"acme\\", alias \\"x\\"');
    const ok = await admin('PATCH', '/v1/tenants/acme', { overrides: { models: { x: 'gpt-5' } } });
    expect(ok.status).toBe(200);
  });

  it.each(['gpt *', 'gpt-*, claude *'])('refuses the setting %j at start, naming the variable', (value) => {
    expect(() => loadConfig({ ...t.env, LANEKEEPER_UPSTREAM_MODELS: value })).toThrow(
      ControlPlaneConfigError,
    );
    try {
      loadConfig({ ...t.env, LANEKEEPER_UPSTREAM_MODELS: value });
    } catch (error) {
      expect((error as ControlPlaneConfigError).problems.map((p) => p.variable)).toContain(
        'LANEKEEPER_UPSTREAM_MODELS',
      );
    }
  });

  it('checks nothing when unset', () => {
    const { LANEKEEPER_UPSTREAM_MODELS: _unset, ...env } = t.env;
    expect(loadConfig(env).upstreamModels).toBeUndefined();
  });
});
