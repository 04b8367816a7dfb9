/**
 * Live reload of the config file as deployments change it, from a review: a directory that
 * is itself a swapped symlink, a directory that cannot be watched, a file read while it is
 * being written, an emptied file, a file too large to be a config; and, in a real proxy
 * process, settings read only at start (named when a reload changes them) and the log level
 * (which follows the reload).
 */
import {
  mkdir,
  mkdtemp,
  readFile,
  rename,
  rm,
  symlink,
  truncate,
  writeFile,
  appendFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { watchConfigFile, type ConfigWatcher } from '../../src/config/load.js';
import { sha256Hex } from '../../src/identity/credentials.js';
import { startReplica } from '../helpers/replica.js';
import { REFUSING_UPSTREAM } from '../helpers/waiting.js';

const KEY = 'lk_live_reload_0123456789abcdef';
let dir: string;
let watcher: ConfigWatcher | undefined;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lanekeeper-live-reload-'));
});
afterEach(() => {
  watcher?.close();
  watcher = undefined;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A config whose tenants are `count` long: its length tells which version was read. */
function configText(tag: string, count = 1): string {
  const tenants = Array.from({ length: count }, (_, i) => ({ id: `t-${tag}-${i}`, plan: 'free' }));
  return stringify({
    upstream: { url: 'http://127.0.0.1:9' },
    plans: { free: { models: { default: 'm' } } },
    tenants,
  });
}

/** Resolves once `check` holds, polled every 25 ms; fails after `timeoutMs`. */
async function eventually(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not so within ${timeoutMs} ms: ${String(check)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function recorder() {
  const applied: Record<string, unknown>[] = [];
  const errors: Error[] = [];
  const warnings: string[] = [];
  return {
    applied,
    errors,
    warnings,
    onChange: (raw: Record<string, unknown>) => void applied.push(raw),
    onError: (error: Error) => void errors.push(error),
    warn: (_fields: Record<string, unknown>, msg: string) => void warnings.push(msg),
  };
}
const firstTenant = (raw: Record<string, unknown> | undefined) =>
  (raw?.tenants as { id: string }[] | undefined)?.[0]?.id;

describe('the config watcher', () => {
  it('follows a directory that is a symlink swapped for another, swap after swap', async () => {
    const root = join(dir, 'swapped');
    for (const v of ['v1', 'v2', 'v3']) {
      await mkdir(join(root, 'releases', v), { recursive: true });
      await writeFile(join(root, 'releases', v, 'config.yaml'), configText(v));
    }
    await symlink(join(root, 'releases', 'v1'), join(root, 'current'));
    const r = recorder();
    const path = join(root, 'current', 'config.yaml');
    watcher = watchConfigFile(path, r.onChange, r.onError, {
      loadedText: await readFile(path, 'utf8'),
      pollMs: 100,
    });
    for (const v of ['v2', 'v3']) {
      // As `ln -sfn` does it, atomically: a new link renamed over the old.
      await symlink(join(root, 'releases', v), join(root, 'next'));
      await rename(join(root, 'next'), join(root, 'current'));
      await eventually(() => firstTenant(r.applied.at(-1)) === `t-${v}-0`, 5_000);
    }
    expect(r.applied.map(firstTenant)).toEqual(['t-v2-0', 't-v3-0']);
    expect(r.errors).toEqual([]);
  });

  it('polls the file when its directory cannot be watched, and says so once', async () => {
    const path = join(dir, 'unwatchable.yaml');
    await writeFile(path, configText('a'));
    const r = recorder();
    watcher = watchConfigFile(path, r.onChange, r.onError, {
      loadedText: await readFile(path, 'utf8'),
      pollMs: 100,
      warn: r.warn,
      watch: (() => {
        throw Object.assign(new Error('EMFILE: too many open files, watch'), { code: 'EMFILE' });
      }) as never,
    });
    await writeFile(path, configText('b'));
    await eventually(() => firstTenant(r.applied.at(-1)) === 't-b-0', 5_000);
    expect(r.warnings).toEqual([expect.stringContaining('cannot watch')]);
  });

  it('never applies a file cut short while it is being written', async () => {
    const path = join(dir, 'slow-writer.yaml');
    await writeFile(path, configText('old'));
    const r = recorder();
    watcher = watchConfigFile(path, r.onChange, r.onError, { loadedText: await readFile(path, 'utf8') });
    // Each prefix that ends at a tenant is a valid config with fewer tenants.
    const text = configText('new', 40);
    const cut = text.indexOf('tenants:');
    const lines = text.slice(cut).split('\n');
    await writeFile(path, text.slice(0, cut));
    for (let i = 0; i < lines.length; i += 16) {
      await new Promise((resolve) => setTimeout(resolve, 70));
      await appendFile(path, lines.slice(i, i + 16).join('\n') + (i + 16 < lines.length ? '\n' : ''));
    }
    await eventually(() => r.applied.length > 0, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(r.applied.map((raw) => (raw.tenants as unknown[]).length)).toEqual([40]);
  });

  it('takes an emptied file for one being written: no error, and the rewrite applies', async () => {
    const path = join(dir, 'emptied.yaml');
    await writeFile(path, configText('a'));
    const r = recorder();
    watcher = watchConfigFile(path, r.onChange, r.onError, { loadedText: await readFile(path, 'utf8') });
    await truncate(path, 0);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await writeFile(path, configText('b'));
    await eventually(() => firstTenant(r.applied.at(-1)) === 't-b-0', 5_000);
    // The empty file never reached the proxy, which refused it as a config with no upstream.
    expect(r.applied.map(firstTenant)).toEqual(['t-b-0']);
    expect(r.errors).toEqual([]);
  });

  it('refuses a file too large to be a config, saying its size', async () => {
    const path = join(dir, 'huge.yaml');
    await writeFile(path, configText('a'));
    const r = recorder();
    watcher = watchConfigFile(path, r.onChange, r.onError, { loadedText: await readFile(path, 'utf8') });
    // Sparse: 300 MiB of nothing, on no disk.
    await truncate(path, 300 * 1024 * 1024);
    await eventually(() => r.errors.length > 0, 5_000);
    expect(JSON.stringify((r.errors[0] as { problems?: unknown }).problems)).toContain('300 MiB');
    expect(r.applied).toEqual([]);
  });

  it('says so once for a file it cannot take, not at every look', async () => {
    const path = join(dir, 'huge-polled.yaml');
    await writeFile(path, configText('a'));
    const r = recorder();
    watcher = watchConfigFile(path, r.onChange, r.onError, {
      loadedText: await readFile(path, 'utf8'),
      pollMs: 100,
    });
    await truncate(path, 300 * 1024 * 1024);
    await eventually(() => r.errors.length > 0, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(r.errors.map((e) => e.message)).toHaveLength(1);
  });

  it('keeps applying edits after one with a byte that is no UTF-8', async () => {
    const path = join(dir, 'latin1.yaml');
    await writeFile(path, configText('a'));
    const r = recorder();
    watcher = watchConfigFile(path, r.onChange, r.onError, {
      loadedText: await readFile(path, 'utf8'),
      pollMs: 100,
    });
    // "# café" in Latin-1: 0xe9 alone is no UTF-8.
    await writeFile(
      path,
      Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from(`\n${configText('b')}`)]),
    );
    await eventually(() => firstTenant(r.applied.at(-1)) === 't-b-0', 5_000);
    await writeFile(path, configText('c'));
    await eventually(() => firstTenant(r.applied.at(-1)) === 't-c-0', 5_000);
  });

  it('applies nothing once closed, even an edit it was reading', async () => {
    const path = join(dir, 'closed.yaml');
    await writeFile(path, configText('a'));
    const r = recorder();
    const closing = watchConfigFile(path, r.onChange, r.onError, {
      loadedText: await readFile(path, 'utf8'),
    });
    await writeFile(path, configText('b'));
    // After the 50 ms debounce, inside the 150 ms the reader waits for the file to settle.
    await new Promise((resolve) => setTimeout(resolve, 120));
    closing.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(r.applied).toEqual([]);
    expect(r.errors).toEqual([]);
  });
});

describe('a reload in a running proxy', () => {
  it('names the settings it cannot apply before a restart, and changes the log level at once', async () => {
    const config = {
      listen: '127.0.0.1:0',
      admin_listen: '127.0.0.1:0',
      upstream: { url: REFUSING_UPSTREAM },
      log: { level: 'info' },
      on_store_error: 'fail_open',
      plans: { free: { models: { default: 'm' } } },
      tenants: [{ id: 'acme', plan: 'free', api_key_sha256: [sha256Hex(KEY)] }],
    };
    const replica = await startReplica(config);
    try {
      await writeFile(
        replica.configPath,
        stringify({ ...config, log: { level: 'debug' }, on_store_error: 'fail_closed', slot_ttl_ms: 5_000 }),
      );
      await eventually(() => replica.lines().some((l) => l.msg === 'config reloaded'), 10_000);
      expect(
        replica
          .lines()
          .filter((l) => l.level === 'warn')
          .map((l) => l.msg),
      ).toContain('on_store_error and slot_ttl_ms changed: they apply after a restart');
      // Debug lines now come out: an upstream not reached is told per request at debug.
      const res = await request(`${replica.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
      });
      await res.body.text();
      expect(res.statusCode).toBe(502);
      await eventually(
        () => replica.lines().some((l) => l.level === 'debug' && l.msg === 'upstream request failed'),
        5_000,
      );
    } finally {
      replica.child.kill('SIGKILL');
    }
  });
});
