/**
 * `npm run demo` is the whole product on one machine: started as a child process on free
 * ports, it prints a console URL, an admin token and a curl command with a demo key. The
 * token signs in to the console, the key works through the proxy, and the tenant's usage
 * (read through the console's API) grows by that request. A second start on the same data
 * directory finds its data and seeds no duplicates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const START = join(import.meta.dirname, 'start.mjs');

/** A port free a moment ago (the OS picks it; the demo binds it right after). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

interface Banner {
  console: string;
  token: string;
  key: string;
  curl: string;
}

let dir: string;
let env: NodeJS.ProcessEnv;
const children: ChildProcess[] = [];

/**
 * Starts the demo and resolves with what it printed once it is ready (and `output`, all it
 * printed so far). In a process group of its own, as a terminal runs it, so that a test can
 * press Ctrl-C: SIGINT to the whole foreground group.
 */
function startDemo(): Promise<{ child: ChildProcess; banner: Banner; output: () => string }> {
  const child = spawn(process.execPath, [START], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo not ready in time:\n${out}`)), 150_000);
    const read = (d: Buffer) => {
      out += d.toString();
      const consoleUrl = /Console:\s+(\S+)/.exec(out)?.[1];
      const token = /Admin token:\s+(\S+)/.exec(out)?.[1];
      const key = /Demo API key:\s+(\S+)/.exec(out)?.[1];
      const curl = /(curl -s \S+\/v1\/chat\/completions.*)/.exec(out)?.[1];
      if (consoleUrl && token && key && curl) {
        clearTimeout(timer);
        resolve({ child, banner: { console: consoleUrl, token, key, curl }, output: () => out });
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.on('exit', (code) => reject(new Error(`demo exited with ${code}:\n${out}`)));
  });
}

async function stopDemo(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lk-demo-whole-'));
  env = {
    ...process.env,
    LANEKEEPER_DEMO_PROXY_PORT: String(await freePort()),
    LANEKEEPER_DEMO_CONTROL_PLANE_PORT: String(await freePort()),
    LANEKEEPER_DEMO_UPSTREAM_PORT: String(await freePort()),
    LANEKEEPER_DEMO_ADMIN_PORT: String(await freePort()),
    LANEKEEPER_DATA_DIR: join(dir, 'data'),
  };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
}, 30_000);

afterAll(async () => {
  for (const child of children) await stopDemo(child);
  await rm(dir, { recursive: true, force: true });
});

async function signIn(base: string, token: string): Promise<string> {
  const res = await request(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  await res.body.text();
  expect(res.statusCode).toBe(303);
  return String(res.headers['set-cookie']).split(';')[0]!;
}

async function usage(base: string, cookie: string): Promise<number> {
  const res = await request(`${base}/api/v1/tenants/demo/usage`, { headers: { cookie } });
  const body = (await res.body.json()) as { total: { requests: number } };
  expect(res.statusCode).toBe(200);
  return body.total.requests;
}

describe('npm run demo', () => {
  it('names a port already in use and the variable that moves it, before starting anything', async () => {
    const holder = createServer().listen(Number(env.LANEKEEPER_DEMO_CONTROL_PLANE_PORT), '127.0.0.1');
    await once(holder, 'listening');
    try {
      const child = spawn(process.execPath, [START], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const [code] = (await once(child, 'exit')) as [number];
      expect(code).toBe(1);
      const port = env.LANEKEEPER_DEMO_CONTROL_PLANE_PORT!;
      expect(out).toContain(`demo: port ${port} (the control plane) is in use`);
      expect(out).toContain(`LANEKEEPER_DEMO_CONTROL_PLANE_PORT=${Number(port) + 10000} npm run demo`);
      expect(out).not.toMatch(/\n\s+at /);
    } finally {
      holder.close();
    }
  });

  it('runs the whole product: console sign-in, a request through the proxy, usage in the ledger', async () => {
    const { child, banner } = await startDemo();
    const cookie = await signIn(banner.console, banner.token);
    // A wrong token does not sign in.
    const refused = await request(`${banner.console}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'demo-admin-wrong' }).toString(),
    });
    await refused.body.text();
    expect(refused.statusCode).not.toBe(303);

    const before = await usage(banner.console, cookie);
    const proxyUrl = /curl -s (\S+)/.exec(banner.curl)![1]!;
    const body = /-d '(.*)'$/.exec(banner.curl)![1]!;
    const res = await request(proxyUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${banner.key}`, 'content-type': 'application/json' },
      body,
    });
    const reply = (await res.body.json()) as { choices: { message: { content: string } }[] };
    expect(res.statusCode).toBe(200);
    expect(reply.choices[0]!.message.content).toContain('hello');

    const deadline = Date.now() + 15_000;
    while ((await usage(banner.console, cookie)) < before + 1) {
      if (Date.now() > deadline) throw new Error('the request never reached the ledger');
      await new Promise((r) => setTimeout(r, 200));
    }
    await stopDemo(child);

    // Second run on the same data: the earlier usage is still there, the tenant is not duplicated.
    const second = await startDemo();
    expect(second.banner.token).not.toBe(banner.token);
    const cookie2 = await signIn(second.banner.console, second.banner.token);
    expect(await usage(second.banner.console, cookie2)).toBe(before + 1);
    // The first run's token is gone with its process.
    const old = await request(`${second.banner.console}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: banner.token }).toString(),
    });
    await old.body.text();
    expect(old.statusCode).not.toBe(303);
    await stopDemo(second.child);
  }, 300_000);

  it('books a request made just before Ctrl-C: the proxy stops first and posts its last usage', async () => {
    const first = await startDemo();
    const cookie = await signIn(first.banner.console, first.banner.token);
    const before = await usage(first.banner.console, cookie);
    const proxyUrl = /curl -s (\S+)/.exec(first.banner.curl)![1]!;
    const res = await request(proxyUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${first.banner.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] }),
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    // Ctrl-C at once, before the proxy's usage batch (500 ms) would have gone: the terminal
    // sends SIGINT to its whole foreground process group.
    const exited = new Promise((r) => first.child.once('exit', r));
    process.kill(-first.child.pid!, 'SIGINT');
    await exited;
    expect(first.output()).not.toContain('usage events not delivered');

    const second = await startDemo();
    const cookie2 = await signIn(second.banner.console, second.banner.token);
    expect(await usage(second.banner.console, cookie2)).toBe(before + 1);
    await stopDemo(second.child);
  }, 300_000);
});
