/**
 * A proxy in control-plane mode on loopback, as the end-to-end tests run it: fed by a real
 * control plane, forwarding to a local upstream, its last snapshot kept in a directory of its
 * own; and the one teardown for all of it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startProxy, type RunningProxy } from '../../proxy/src/main.js';
import { REDIS_URL, type TestEnv } from '../../control-plane/test/helpers/test-env.js';

export interface FedProxyOptions {
  cp: { url: string };
  t: TestEnv;
  /** An OpenAI-dialect upstream listening on loopback. */
  upstream: Server;
  /** Redis under the test's key prefix, or the embedded memory store. */
  store: 'redis' | 'memory';
  pollIntervalMs: number;
}

export async function startFedProxy(o: FedProxyOptions): Promise<{ proxy: RunningProxy; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'lk-fed-proxy-'));
  const proxy = await startProxy({
    config: {
      listen: '127.0.0.1:0',
      admin_listen: '127.0.0.1:0',
      upstream: { url: `http://127.0.0.1:${(o.upstream.address() as AddressInfo).port}`, dialect: 'openai' },
      store: o.store === 'redis' ? { redis: REDIS_URL, key_prefix: o.t.prefix } : 'memory',
      log: { level: 'silent' },
      control_plane: {
        url: o.cp.url,
        token: o.t.proxyToken,
        poll_interval_ms: o.pollIntervalMs,
        snapshot_path: join(dir, 'snapshot.json'),
      },
    },
    logger: pino({ level: 'silent' }),
  });
  return { proxy, dir };
}

/** Stops whatever of it was started, the proxy first (it flushes usage to the control plane). */
export async function stopStack(parts: {
  proxy?: RunningProxy;
  cp?: { close(): Promise<void> };
  t?: TestEnv;
  upstream?: Server;
  dir?: string;
}): Promise<void> {
  await parts.proxy?.close(0);
  await parts.cp?.close();
  await parts.t?.dispose();
  await new Promise((r) => (parts.upstream ? parts.upstream.close(r) : r(undefined)));
  if (parts.dir) await rm(parts.dir, { recursive: true, force: true });
}
