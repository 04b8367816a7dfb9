/**
 * A proxy in control-plane mode that starts while the control plane is down serves from the
 * snapshot it saved, wherever it is started from: a relative `snapshot_path` is read against
 * the config file's folder, not the working directory.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/identity/credentials.js';
import { snapshotPathOf, startProxy, type RunningProxy } from '../src/main.js';
import { chatCompletion, startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';

const KEY = 'lk_snapshot_path_0123456789';
let dir: string;
let upstream: FakeUpstream;
let proxy: RunningProxy | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lk-snapshot-path-'));
  upstream = await startFakeUpstream(() => ({
    kind: 'json',
    body: chatCompletion('m', 'ok', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
  }));
});
afterAll(async () => {
  await proxy?.close(100);
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
});

describe('control_plane.snapshot_path', () => {
  it('resolves a relative path against the config file, an absolute one as it is', () => {
    expect(snapshotPathOf('.lanekeeper/snapshot.json', '/etc/lk/config.yaml')).toBe(
      '/etc/lk/.lanekeeper/snapshot.json',
    );
    expect(snapshotPathOf('/var/lib/lk/s.json', '/etc/lk/config.yaml')).toBe('/var/lib/lk/s.json');
    expect(snapshotPathOf('s.json', undefined)).toBe(join(process.cwd(), 's.json'));
  });

  it('lets a proxy started from another folder serve from the snapshot beside its config', async () => {
    expect(process.cwd()).not.toBe(dir);
    const snapshot = {
      version: 3,
      plans: { p: { models: { default: 'm' } } },
      tenants: [{ id: 'acme', plan: 'p', api_key_sha256: [sha256Hex(KEY)] }],
      pricing: {},
    };
    await mkdir(join(dir, '.lanekeeper'));
    await writeFile(
      join(dir, '.lanekeeper', 'snapshot.json'),
      JSON.stringify({ etag: '"3"', saved_at: '2026-12-01T00:00:00Z', snapshot }),
    );
    const configPath = join(dir, 'lanekeeper.yaml');
    await writeFile(
      configPath,
      stringify({
        listen: '127.0.0.1:0',
        admin_listen: '127.0.0.1:0',
        upstream: { url: upstream.url },
        // Port 1 on loopback: nothing listens, so the control plane is down.
        control_plane: { url: 'http://127.0.0.1:1', token: 't' },
      }),
    );
    proxy = await startProxy({ configPath, logger: pino({ level: 'silent' }) });
    const res = await request(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.statusCode).toBe(200);
    await res.body.text();
  });
});
