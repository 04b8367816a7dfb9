// DEMO ONLY: the whole product on one machine. Starts the demo upstream, the control plane on
// its embedded database (PGlite in .lanekeeper/data, no PostgreSQL or Redis), and a proxy in
// control-plane mode; seeds a plan, a tenant and an API key through the admin API; prints the
// console URL, a one-time admin token (random each run) and a curl command. Ctrl-C stops all.
//
// Ports (override when 8080/8081/8090/9464 are taken): LANEKEEPER_DEMO_PROXY_PORT,
// LANEKEEPER_DEMO_CONTROL_PLANE_PORT, LANEKEEPER_DEMO_UPSTREAM_PORT, LANEKEEPER_DEMO_ADMIN_PORT.
// LANEKEEPER_DATA_DIR moves the data directory.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { supervise, takenPorts } from './supervise.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const port = (name, fallback) => Number(process.env[name] || fallback);
const ports = {
  proxy: port('LANEKEEPER_DEMO_PROXY_PORT', 8080),
  controlPlane: port('LANEKEEPER_DEMO_CONTROL_PLANE_PORT', 8081),
  upstream: port('LANEKEEPER_DEMO_UPSTREAM_PORT', 8090),
  admin: port('LANEKEEPER_DEMO_ADMIN_PORT', 9464),
};
// A port already taken made a part fail in its own words ("wrong admin token" when another
// control plane answered on 8081, a stack trace from the upstream): check them all first.
const taken = await takenPorts([
  ['the proxy', ports.proxy, 'LANEKEEPER_DEMO_PROXY_PORT'],
  ['the control plane', ports.controlPlane, 'LANEKEEPER_DEMO_CONTROL_PLANE_PORT'],
  ['the demo upstream', ports.upstream, 'LANEKEEPER_DEMO_UPSTREAM_PORT'],
  ['the proxy admin listener', ports.admin, 'LANEKEEPER_DEMO_ADMIN_PORT'],
]);
if (taken.length > 0) {
  for (const [what, number, variable] of taken)
    console.error(
      `demo: port ${number} (${what}) is in use: stop what holds it, or choose another, e.g. ${variable}=${number + 10000} npm run demo`,
    );
  process.exit(1);
}
const dataDir = resolve(root, process.env.LANEKEEPER_DATA_DIR || '.lanekeeper/data');
const cli = join(root, 'proxy', 'bin', 'lanekeeper.js');
const controlPlane = `http://127.0.0.1:${ports.controlPlane}`;
const upstream = `http://127.0.0.1:${ports.upstream}`;
// Fresh each run: the tokens live only in this process and its children.
const adminToken = `demo-admin-${randomBytes(18).toString('base64url')}`;
const proxyToken = `demo-proxy-${randomBytes(18).toString('base64url')}`;

const demo = supervise([
  {
    name: 'demo upstream',
    args: [join(root, 'examples', 'demo', 'upstream.mjs')],
    env: { PORT: String(ports.upstream), HOST: '127.0.0.1' },
  },
  {
    name: 'control plane',
    args: [cli, 'control-plane'],
    env: {
      DATABASE_URL: '',
      REDIS_URL: '',
      LANEKEEPER_DATA_DIR: dataDir,
      LANEKEEPER_ADMIN_TOKEN: adminToken,
      LANEKEEPER_PROXY_TOKEN: proxyToken,
      PORT: String(ports.controlPlane),
      HOST: '127.0.0.1',
      LANEKEEPER_LOG_LEVEL: process.env.LANEKEEPER_LOG_LEVEL || 'warn',
    },
  },
]);

/** Calls the admin API; returns {status, body}. */
async function admin(method, path, body) {
  const res = await fetch(`${controlPlane}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${adminToken}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

async function waitFor(url, what, limitMs = 120_000) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not become ready within ${limitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Creates the demo plan and tenant when absent (first run), and a new key for this run. */
async function seed() {
  if ((await admin('GET', '/v1/plans/demo')).status === 404) {
    const plan = await admin('POST', '/v1/plans', {
      id: 'demo',
      models: { default: 'gpt-4o-mini' },
      rate_limits: { requests_per_minute: 60 },
    });
    if (plan.status !== 201) throw new Error(`could not create the demo plan: ${JSON.stringify(plan.body)}`);
  }
  if ((await admin('GET', '/v1/pricing')).body?.versions?.length === 0) {
    // PLACEHOLDER prices (USD per 1M tokens), so the console shows costs.
    const prices = await admin('POST', '/v1/pricing/versions', {
      effective_from: new Date(Date.now() - 60_000).toISOString(),
      prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
    });
    if (prices.status !== 201) throw new Error(`could not set demo prices: ${JSON.stringify(prices.body)}`);
  }
  if ((await admin('GET', '/v1/tenants/demo')).status === 404) {
    const tenant = await admin('POST', '/v1/tenants', { id: 'demo', plan: 'demo' });
    if (tenant.status !== 201)
      throw new Error(`could not create the demo tenant: ${JSON.stringify(tenant.body)}`);
  }
  // Keys are stored hashed, so an earlier run's key cannot be shown again: issue one per run.
  const key = await admin('POST', '/v1/tenants/demo/keys');
  if (key.status !== 201) throw new Error(`could not issue a demo key: ${JSON.stringify(key.body)}`);
  return key.body.key;
}

try {
  await waitFor(`${controlPlane}/readyz`, 'the control plane');
  const key = await seed();
  const configPath = join(dataDir, '..', 'demo-proxy.yaml');
  mkdirSync(dirname(configPath), { recursive: true });
  // JSON is YAML: the proxy's own settings; plans, tenants and keys come from the control plane.
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        listen: `127.0.0.1:${ports.proxy}`,
        admin_listen: `127.0.0.1:${ports.admin}`,
        upstream: { url: upstream, dialect: 'openai' },
        store: 'memory',
        control_plane: {
          url: controlPlane,
          token: proxyToken,
          poll_interval_ms: 1000,
          snapshot_path: join(dataDir, '..', 'demo-snapshot.json'),
        },
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  // It carries the proxy's control-plane token; a file left by an older run may be 0644.
  chmodSync(configPath, 0o600);
  demo.add({ name: 'proxy', args: [cli, 'proxy', '--config', configPath] });
  await waitFor(`http://127.0.0.1:${ports.admin}/readyz`, 'the proxy');
  process.stdout.write(
    [
      '',
      'Lanekeeper demo is running (one machine: embedded database, no Redis).',
      `  Console:      ${controlPlane}/console`,
      `  Admin token:  ${adminToken}   (sign in to the console with it; new each run)`,
      `  Demo API key: ${key}   (tenant "demo", plan "demo")`,
      '  Try:',
      `    curl -s http://127.0.0.1:${ports.proxy}/v1/chat/completions -H 'authorization: Bearer ${key}' -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":"hello"}]}'`,
      `  Data:         ${dataDir}`,
      '',
      '',
    ].join('\n'),
  );
} catch (error) {
  process.stderr.write(`demo: ${error.message}; stopping the demo\n`);
  demo.stop();
}
process.exitCode = await demo.done;
