/**
 * Image smoke test without Docker: builds the `proxy` and `control-plane` targets' file
 * systems by running the Dockerfile's own steps (dockerfile-runner.ts), then walks the
 * compose quickstart of docs/deployment.md against them on loopback: migrate, start the
 * control plane with the image's CMD, start the proxy with the image's CMD and the compose
 * config, pass both HEALTHCHECK commands, onboard a tenant through the admin API, send it
 * traffic, see its cost in /metrics, suspend it and see 403, then SIGTERM both and expect
 * clean exits. Uses the machine's PostgreSQL and Redis (DATABASE_URL / REDIS_URL honoured)
 * with a private database and key prefix, removed afterwards.
 *
 *   npx tsx charts/test/image-smoke.ts        (about two minutes: npm ci twice and tsc)
 *
 * Slow and network-bound (npm registry), so it is a script for .ci/run, not a vitest file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { freePort, until } from '../../proxy/test/helpers/waiting.js';
import { REPO_ROOT } from './chart.js';
import { buildTargets, type BuiltImage } from './dockerfile-runner.js';

const results: { name: string; ok: boolean; detail?: string }[] = [];
const children: ChildProcess[] = [];
const adminDatabaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const suffix = randomBytes(4).toString('hex');
const database = `lk_image_smoke_${suffix}`;
const keyPrefix = `lk-image-smoke-${suffix}:`;
const workDir = mkdtempSync(join(tmpdir(), 'lk-image-smoke-'));

function check(name: string, ok: boolean, detail?: string): void {
  results.push({ name, ok, detail });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok || !detail ? '' : `: ${detail}`}`);
}

/** Starts the image's CMD (with `replace` applied to its arguments) in the image root. */
function startCmd(
  image: BuiltImage,
  env: Record<string, string>,
  replace: Record<string, string> = {},
): ChildProcess {
  const [command, ...args] = (image.cmd ?? []).map((arg) => replace[arg] ?? arg);
  const child = spawn(command === 'node' ? process.execPath : (command ?? ''), args, {
    cwd: image.root,
    env: { ...process.env, ...image.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
  child.stderr?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
  Object.defineProperty(child, 'log', { get: () => log });
  children.push(child);
  return child;
}

function healthcheck(image: BuiltImage, env: Record<string, string>): number | null {
  const [, ...args] = image.healthcheck ?? [];
  return spawnSync(process.execPath, args, { env: { ...process.env, ...env }, timeout: 10_000 }).status;
}

async function stop(child: ChildProcess, graceMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

async function main(): Promise<void> {
  console.log(`building the proxy and control-plane targets under ${workDir} ...`);
  const images = buildTargets(REPO_ROOT, ['proxy', 'control-plane'], workDir);
  const proxyImage = images.get('proxy') as BuiltImage;
  const cpImage = images.get('control-plane') as BuiltImage;
  check('both targets build from the Dockerfile steps', Boolean(proxyImage.cmd && cpImage.cmd));
  check('both images run as the non-root node user', proxyImage.user === 'node' && cpImage.user === 'node');

  const admin = new pg.Client({ connectionString: adminDatabaseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const databaseUrl = new URL(adminDatabaseUrl);
  databaseUrl.pathname = `/${database}`;
  const adminToken = `admin-${randomBytes(12).toString('hex')}`;
  const proxyToken = `proxy-${randomBytes(12).toString('hex')}`;

  try {
    const migrate = spawnSync(process.execPath, ['proxy/bin/lanekeeper.js', 'migrate'], {
      cwd: cpImage.root,
      env: { ...process.env, ...cpImage.env, DATABASE_URL: databaseUrl.href },
      encoding: 'utf8',
      timeout: 60_000,
    });
    check(
      'control-plane image: lanekeeper migrate applies the migrations',
      migrate.status === 0,
      migrate.stderr,
    );

    const cpPort = await freePort();
    const controlPlane = startCmd(cpImage, {
      PORT: String(cpPort),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl.href,
      REDIS_URL: redisUrl,
      LANEKEEPER_ADMIN_TOKEN: adminToken,
      LANEKEEPER_PROXY_TOKEN: proxyToken,
      LANEKEEPER_KEY_PREFIX: keyPrefix,
    });
    const cp = `http://127.0.0.1:${cpPort}`;
    await until('control plane /readyz', async () => ((await fetch(`${cp}/readyz`)).ok ? true : undefined));
    check('control-plane image: HEALTHCHECK passes', healthcheck(cpImage, { PORT: String(cpPort) }) === 0);

    const upstreamPort = await freePort();
    const upstream = spawn(process.execPath, [join(REPO_ROOT, 'examples/demo/upstream.mjs')], {
      env: { ...process.env, PORT: String(upstreamPort), HOST: '127.0.0.1' },
      stdio: 'ignore',
    });
    children.push(upstream);

    const headers = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
    const post = async (path: string, body: unknown, method = 'POST') => {
      const response = await fetch(`${cp}${path}`, { method, headers, body: JSON.stringify(body) });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const steps = [
      await post('/v1/pricing/versions', {
        effective_from: '2020-01-01T00:00:00Z',
        prices: { 'demo-small': { input: 0.5, output: 1.5 } },
      }),
      await post('/v1/plans', {
        id: 'free',
        models: { default: 'demo-small' },
        rate_limits: { requests_per_minute: 10 },
      }),
      await post('/v1/tenants', { id: 'acme', plan: 'free' }),
    ];
    const key = await post('/v1/tenants/acme/keys', {});
    check(
      'admin API: pricing, plan, tenant and key as in the quickstart',
      steps.every((s) => s.status === 201 || s.status === 200) && typeof key.body.key === 'string',
      JSON.stringify([...steps, key].map((s) => s.status)),
    );

    const config = parse(readFileSync(join(REPO_ROOT, 'deploy/proxy.compose.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    const [trafficPort, adminPort] = [await freePort(), await freePort()];
    Object.assign(config, {
      listen: `127.0.0.1:${trafficPort}`,
      admin_listen: `127.0.0.1:${adminPort}`,
      upstream: { ...(config.upstream as object), url: `http://127.0.0.1:${upstreamPort}` },
      store: { redis: redisUrl, key_prefix: keyPrefix },
      control_plane: {
        ...(config.control_plane as object),
        url: cp,
        snapshot_path: join(workDir, 'snapshot.json'),
      },
    });
    const configPath = join(workDir, 'proxy.yaml');
    writeFileSync(configPath, stringify(config));
    // The proxy service's own compose environment, its defaults filled in as compose would:
    // whatever tokens docker-compose.yml gives the proxy, this run gives it too.
    const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as {
      services: { proxy: { environment: Record<string, string> } };
    };
    const proxyEnv = Object.fromEntries(
      Object.entries(compose.services.proxy.environment).map(([name, value]) => [
        name,
        String(value).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1'),
      ]),
    );
    const proxy = startCmd(
      proxyImage,
      { ...proxyEnv, LANEKEEPER_PROXY_TOKEN: proxyToken },
      { '/etc/lanekeeper/config.yaml': configPath },
    );
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    await until('proxy /readyz', async () => ((await fetch(`${adminUrl}/readyz`)).ok ? true : undefined));
    check(
      'proxy image: HEALTHCHECK passes',
      healthcheck(proxyImage, { LANEKEEPER_HEALTH_URL: `${adminUrl}/healthz` }) === 0,
    );

    const chat = async () =>
      (
        await fetch(`http://127.0.0.1:${trafficPort}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${String(key.body.key)}`, 'content-type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] }),
        })
      ).status;
    const first = await until(
      'the tenant to be served',
      async () => ((await chat()) === 200 ? 200 : undefined),
      15_000,
    );
    check('proxy image: a control-plane tenant is served', first === 200);
    const cost = await until('the cost to be metered', async () => {
      const text = await (
        await fetch(`${adminUrl}/metrics`, {
          headers: { authorization: `Bearer ${proxyEnv.LANEKEEPER_METRICS_TOKEN ?? ''}` },
        })
      ).text();
      const line = text.split('\n').find((l) => l.startsWith('lanekeeper_cost_usd_total{tenant="acme"'));
      return line && Number(line.split(' ').pop()) > 0 ? line : undefined;
    });
    check('proxy image: /metrics has the tenant cost', cost.includes('model="demo-small"'), cost);

    await post('/v1/tenants/acme', { status: 'suspended' }, 'PATCH');
    const suspended = await until(
      'the suspension to apply',
      async () => ((await chat()) === 403 ? 403 : undefined),
      10_000,
    );
    check('a suspension in the control plane reaches the proxy', suspended === 403);

    const proxyExit = await stop(proxy);
    const cpExit = await stop(controlPlane);
    check('proxy exits 0 on SIGTERM', proxyExit === 0, `exit ${proxyExit}`);
    check('control plane exits 0 on SIGTERM', cpExit === 0, `exit ${cpExit}`);
  } finally {
    for (const child of children) await stop(child, 5_000);
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    const redis = new Redis(redisUrl);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    await redis.quit();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main()
  .catch((error: unknown) => check('image smoke test ran to the end', false, String(error)))
  .finally(() => {
    const failed = results.filter((r) => !r.ok).length;
    console.log(`${results.length - failed} passed, ${failed} failed`);
    process.exitCode = failed > 0 ? 1 : 0;
  });
