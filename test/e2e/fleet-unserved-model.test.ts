/**
 * A plan naming a model that none of a proxy's upstreams serves. The control plane accepts it
 * (LANEKEEPER_UPSTREAM_MODELS is opt-in, and proxies of one fleet may front different
 * upstreams); the proxy used to refuse the whole snapshot, and every one after it, since each
 * still held that plan: a key revoked and a tenant suspended afterwards were served on, also
 * after a restart (found by review). Now the snapshot applies, the model is a warning, and
 * requests for it get a 400. The same fed proxy then has its own control_plane section edited.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type RunningProxy } from '../../proxy/src/main.js';
import {
  chatCompletion,
  startFakeUpstream,
  type FakeUpstream,
} from '../../proxy/test/helpers/fake-upstream.js';
import { until } from '../../proxy/test/helpers/waiting.js';
import { call } from '../../control-plane/test/helpers/http.js';
import { startSeeded, stopSeeded, type Seeded } from '../../control-plane/test/helpers/seeded.js';
import { REDIS_URL } from '../../control-plane/test/helpers/test-env.js';
import { logLines } from '../helpers/log-lines.js';

let s: Seeded;
let upstream: FakeUpstream;
let proxy: RunningProxy | undefined;
let dir: string;
let fileConfig: Record<string, unknown>;
const logs = logLines();

const admin = (method: string, path: string, body?: unknown) =>
  call(s.cp.url, method, path, { token: s.t.adminToken, body });

async function chat(key: string): Promise<{ status: number; text: string }> {
  const res = await request(`${proxy!.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

beforeAll(async () => {
  upstream = await startFakeUpstream({
    kind: 'json',
    body: chatCompletion('gpt-4o-mini', 'hi', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
  });
  dir = await mkdtemp(join(tmpdir(), 'lk-unserved-'));
  s = await startSeeded();
  await admin('POST', '/v1/plans', { id: 'mini', models: { default: 'gpt-4o-mini' } });
});

afterAll(async () => {
  await proxy?.close(0);
  await stopSeeded(s ?? {});
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a plan naming a model no upstream of this proxy serves', () => {
  it('is a warning and a 400 for its requests; revocations and suspensions still apply', async () => {
    for (const id of ['acme', 'globex', 'initech'])
      expect((await admin('POST', '/v1/tenants', { id, plan: 'mini' })).status).toBe(201);
    const keyOf = async (id: string) =>
      (await admin('POST', `/v1/tenants/${id}/keys`)).body as { id: string; key: string };
    const [acme, globex, initech] = [await keyOf('acme'), await keyOf('globex'), await keyOf('initech')];
    fileConfig = {
      listen: '127.0.0.1:0',
      admin_listen: '127.0.0.1:0',
      upstreams: {
        openai: {
          url: upstream.url,
          dialect: 'openai',
          models: ['gpt-*'],
        },
      },
      store: { redis: REDIS_URL, key_prefix: s.t.prefix },
      control_plane: {
        url: s.cp.url,
        token: s.t.proxyToken,
        poll_interval_ms: 500,
        snapshot_path: join(dir, 'snapshot.json'),
      },
    };
    proxy = await startProxy({ config: fileConfig, logger: pino({ level: 'info' }, logs.stream) });
    expect((await chat(acme.key)).status).toBe(200);

    // Another provider's plan, which this proxy does not front; then initech moves to it.
    expect(
      (await admin('POST', '/v1/plans', { id: 'claude', models: { default: 'claude-sonnet-4-5' } })).status,
    ).toBe(201);
    expect((await admin('PATCH', '/v1/tenants/initech', { plan: 'claude' })).status).toBe(200);
    // And the changes that must reach every proxy within a second.
    expect((await admin('DELETE', `/v1/tenants/acme/keys/${acme.id}`)).status).toBe(200);
    expect((await admin('PATCH', '/v1/tenants/globex', { status: 'suspended' })).status).toBe(200);

    await until(
      'the revocation and the suspension applied',
      async () =>
        ((await chat(acme.key)).status === 401 && (await chat(globex.key)).status === 403) || undefined,
      5_000,
      50,
    );
    const unserved = await chat(initech.key);
    expect(unserved.status).toBe(400);
    expect(JSON.parse(unserved.text).error.message).toContain(
      'No upstream serves the model "claude-sonnet-4-5"',
    );

    const warnings = logs.lines.filter((l) => l.msg === 'config warning');
    expect(warnings.map((l) => l.message)).toContainEqual(
      expect.stringContaining('no upstream serves model "claude-sonnet-4-5"'),
    );
    const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text();
    expect(metrics).not.toMatch(/lanekeeper_config_reloads_total\{result="rejected"\} [1-9]/);
  });

  // The source (URL, token, polling) is made at start: an edit said "config reloaded" and
  // took no effect, a new token included.
  it('says a changed control_plane section applies after a restart', async () => {
    const from = logs.lines.length;
    const plane = fileConfig.control_plane as Record<string, unknown>;
    await proxy!.reload({ ...fileConfig, control_plane: { ...plane, poll_interval_ms: 700 } });
    expect(logs.lines.slice(from).map((l) => l.msg)).toContain(
      'control_plane settings changed: they apply after a restart',
    );
  });
});
