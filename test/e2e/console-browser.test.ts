/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core) against
 * a real control plane, a real proxy in control-plane mode and a fake OpenAI upstream:
 * sign in (a wrong token first), create a plan (a bad value first, its error beside the
 * field), a price version, a tenant and a key; send traffic through the proxy with that key
 * and see the ledger's usage on the tenant page; change the plan, revoke the key (the proxy
 * then refuses it), export the CSV, erase the tenant behind the typed confirmation; a form
 * on another origin posting to the console is refused. Every page is screenshotted at
 * 1280×800 and at phone size, into test/e2e/screenshots/ (ignored by git), or with
 * LANEKEEPER_UPDATE_SCREENSHOTS=1 into docs/console/, the ones docs/console.md shows: they
 * carry timestamps and key ids, so an ordinary run must not rewrite the committed ones.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_OUTPUT_TOKENS } from '@lanekeeper/contract';
import { startControlPlane } from '../../control-plane/src/main.js';
import { call } from '../../control-plane/test/helpers/http.js';
import { createTestEnv, REDIS_URL, type TestEnv } from '../../control-plane/test/helpers/test-env.js';
import { startProxy, type RunningProxy } from '../../proxy/src/main.js';
import { bookEvents } from '../../control-plane/src/ledger/book-events.js';
import { usageEvent } from '../../control-plane/test/helpers/usage-event.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS =
  process.env.LANEKEEPER_UPDATE_SCREENSHOTS === '1'
    ? join(import.meta.dirname, '..', '..', 'docs', 'console')
    : join(import.meta.dirname, 'screenshots');

let t: TestEnv;
let cp: { url: string; close(): Promise<void> };
let upstream: Server;
let attacker: Server;
let proxy: RunningProxy | undefined;
let browser: Browser;
let page: Page;
let dir: string;
const problems: string[] = [];

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

/** An OpenAI-style upstream answering every chat with 12 input and 8 output tokens. */
function fakeUpstream(): Server {
  return createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'c1',
          object: 'chat.completion',
          model: 'gpt-4o-mini',
          choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
        }),
      );
    });
  });
}

/** Requests the proxy answered 200: each one is a ledger row (some while a revocation propagates). */
let served = 0;

async function chat(key: string): Promise<number> {
  const res = await request(`${proxy!.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }),
  });
  await res.body.text();
  if (res.statusCode === 200) served++;
  return res.statusCode;
}

async function until(check: () => Promise<boolean>, what: string, limitMs = 15_000) {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function shot(name: string) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** True when nothing is wider than the viewport (no sideways scrolling of the page). */
const fitsWidth = () => page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');

const admin = (method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), 'lk-console-'));
  t = await createTestEnv();
  cp = await startControlPlane(t.env);
  upstream = fakeUpstream();
  const upstreamUrl = await listen(upstream);
  // The attacker: another origin on the same site (same host, another port), so
  // SameSite=Strict alone would still let the browser send the console's cookie.
  attacker = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><link rel="icon" href="data:,"><form id="f" method="post" action="${cp.url}/console/api/v1/tenants">
      <input name="id" value="evil"><input name="plan" value="starter"></form>
      <script>document.getElementById('f').submit()</script>`);
  });
  await listen(attacker);
  proxy = await startProxy({
    config: {
      listen: '127.0.0.1:0',
      admin_listen: '127.0.0.1:0',
      upstream: { url: upstreamUrl, dialect: 'openai' },
      store: { redis: REDIS_URL, key_prefix: t.prefix },
      log: { level: 'silent' },
      control_plane: {
        url: cp.url,
        token: t.proxyToken,
        poll_interval_ms: 1000,
        snapshot_path: join(dir, 'snapshot.json'),
      },
    },
    logger: pino({ level: 'silent' }),
  });
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(8000);
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // The refusals this test provokes (400, 401, 403, and the 404 of exporting a tenant that
    // is not there) are logged by the browser too; the test asserts those itself. Anything
    // else (a CSP violation, a missing asset) counts.
    const text = message.text();
    const where = message.location().url;
    const provoked =
      /status of (400|401|403) /.test(text) ||
      (/status of 404 /.test(text) && where.includes('/console/api/export.csv?tenant=nobody')) ||
      where.endsWith('/favicon.ico');
    if (message.type() === 'error' && !provoked) problems.push(`console: ${text} at ${where}`);
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await proxy?.close(0);
  await cp?.close();
  await t?.dispose();
  await new Promise((r) => upstream?.close(r));
  await new Promise((r) => attacker?.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('the console in a browser', () => {
  let key: string;

  it('signs in with the admin token only, keeping it out of URLs and storage', async () => {
    await page.goto(`${cp.url}/console/tenants`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await shot('login');
    await page.fill('#token', 'not-the-token');
    await page.press('#token', 'Enter');
    await page.waitForSelector('#token-error');
    expect(await page.textContent('#token-error')).toContain('not the admin token');

    await page.fill('#token', t.adminToken);
    await Promise.all([page.waitForURL(`${cp.url}/console`), page.click('button[type=submit]')]);
    expect(page.url()).not.toContain(t.adminToken);
    const storage = await page.evaluate<string>(
      'JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })',
    );
    expect(storage).not.toContain(t.adminToken);
    expect(storage).toBe('{}{}');
    const cookies = await page.context().cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({
      name: 'lk_console',
      httpOnly: true,
      sameSite: 'Strict',
      path: '/console',
    });
    expect(await page.evaluate<string>('document.cookie')).toBe('');
  });

  it('says a new install needs a plan before a tenant', async () => {
    await page.goto(`${cp.url}/console/tenants`);
    await page.waitForSelector('#no-plans');
    expect(await page.textContent('#no-plans')).toContain('No plans yet');
    expect(await page.isDisabled('#create button')).toBe(true);
  });

  it('creates plans, showing a validation error next to its field', async () => {
    await page.goto(`${cp.url}/console/plans`);
    await page.fill('[name="id"]', 'starter');
    await page.fill('[name="models.default"]', 'gpt-4o-mini');
    await page.fill('[name="rate_limits.requests_per_minute"]', '-5');
    await page.click('#save');
    const error = page.locator('[data-error-for="rate_limits.requests_per_minute"]');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toMatch(/>\s*0|greater|minimum|positive/i);
    expect(await page.getAttribute('[name="rate_limits.requests_per_minute"]', 'aria-invalid')).toBe('true');
    await shot('plan-error');

    // A typo in a fallback list is said beside its field, and nothing is sent.
    await page.fill('[name="rate_limits.requests_per_minute"]', '1000');
    await page.fill('[name="models.default"]', '[gpt-4o-mini');
    await page.click('#save');
    const listError = page.locator('[data-error-for="models.default"]');
    await listError.waitFor({ state: 'visible' });
    expect(await listError.textContent()).toContain('JSON array');
    expect((await admin('GET', '/v1/plans/starter')).status).toBe(404);

    await page.fill('[name="models.default"]', 'gpt-4o-mini');
    await page.click('#save');
    await page.waitForSelector('text=Plan starter created.');
    for (const id of ['pro']) {
      await page.fill('[name="id"]', id);
      await page.fill('[name="models.default"]', 'gpt-4o-mini');
      await page.fill('[name="rate_limits.requests_per_minute"]', '5000');
      await page.click('#save');
      await page.waitForSelector(`text=Plan ${id} created.`);
    }
    expect((await admin('GET', '/v1/plans/starter')).body.rate_limits.requests_per_minute).toBe(1000);
    await page.waitForSelector('#list td:text-is("starter")');

    // Edit: the form is filled from the plan; a bad value is refused beside its field, a good one saved.
    await page.click('button[aria-label="Edit plan starter"]');
    expect(await page.inputValue('[name="rate_limits.requests_per_minute"]')).toBe('1000');
    expect(await page.isEditable('[name="id"]')).toBe(false);
    await page.fill('[name="max_output_tokens"]', '0');
    await page.click('#save');
    await page.locator('[data-error-for="max_output_tokens"]').waitFor({ state: 'visible' });
    await page.fill('[name="max_output_tokens"]', '2048');
    await page.click('#save');
    await page.waitForSelector('text=Plan starter saved.');
    const saved = (await admin('GET', '/v1/plans/starter')).body;
    expect(saved).toMatchObject({ max_output_tokens: 2048, rate_limits: { requests_per_minute: 1000 } });
    // A field taken off in the form is off the plan: sent as a PATCH, it stayed, the page
    // saying "saved" all the same.
    expect(
      (
        await admin('PATCH', '/v1/plans/starter', {
          max_context: 8000,
          custom_prompts: { system: 'Be terse.' },
        })
      ).status,
    ).toBe(200);
    await page.reload();
    await page.click('button[aria-label="Edit plan starter"]');
    expect(await page.inputValue('#rest')).toContain('Be terse.');
    await page.fill('#rest', '{}');
    await page.fill('[name="max_output_tokens"]', '');
    await page.click('#save');
    await page.waitForSelector('text=Plan starter saved.');
    const trimmed = (await admin('GET', '/v1/plans/starter')).body;
    expect(trimmed).toMatchObject({ rate_limits: { requests_per_minute: 1000 } });
    expect(trimmed).not.toHaveProperty('max_context');
    // Cleared, the cap is the default again, not 2048.
    expect(trimmed.max_output_tokens).toBe(DEFAULT_MAX_OUTPUT_TOKENS);
    expect(trimmed.custom_prompts ?? {}).toEqual({});
    // A bad value typed into the JSON box is said beside it, with its field's name.
    await page.click('button[aria-label="Edit plan starter"]');
    await page.fill('#rest', '{"max_context": -1}');
    await page.click('#save');
    const restError = page.locator('[data-error-for="rest"]');
    await restError.waitFor({ state: 'visible' });
    expect(await restError.textContent()).toMatch(/^max_context: /);
    expect(await page.getAttribute('#rest', 'aria-invalid')).toBe('true');
    await page.fill('#rest', '{}');
    await shot('plans');

    // A hostile string in a plan is shown as text: no markup parsed, no handler run.
    const hostile = '<img src=x onerror="window.pwned=1">';
    expect(
      (await admin('POST', '/v1/plans', { id: 'zz-hostile', models: { default: hostile } })).status,
    ).toBe(201);
    await page.reload();
    await page.waitForSelector('#list td:text-is("zz-hostile")');
    expect(await page.locator('#list tr', { hasText: 'zz-hostile' }).locator('td').nth(1).textContent()).toBe(
      hostile,
    );
    expect(await page.locator('#list img').count()).toBe(0);
    expect(await page.evaluate<unknown>('window.pwned')).toBeUndefined();
  });

  it('adds a price version', async () => {
    await page.goto(`${cp.url}/console/pricing`);
    await page.fill('#effective_from', '2026-01-01T00:00');
    await page.fill('[name="row0.model"]', 'gpt-4o-mini');
    await page.fill('[name="row0.input"]', '0.15');
    await page.fill('[name="row0.output"]', '-1');
    await page.click('#price-form button[type=submit]');
    const error = page.locator('#rows [data-error-for="row0.output"]');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toMatch(/>=\s*0|minimum|greater/i);
    expect(await page.getAttribute('[name="row0.output"]', 'aria-invalid')).toBe('true');
    await page.fill('[name="row0.output"]', '0.6');
    await page.click('#price-form button[type=submit]');
    await page.waitForSelector('text=/Price version \\d+ added/');
    expect((await admin('GET', '/v1/pricing')).body.current.prices['gpt-4o-mini']).toMatchObject({
      input: 0.15,
      output: 0.6,
    });
    await shot('pricing');
  });

  it('creates a tenant with the keyboard, and a key shown once', async () => {
    await page.goto(`${cp.url}/console/tenants`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string>('document.activeElement?.textContent')).toBe('Skip to content');
    await page.focus('[name="id"]');
    await page.keyboard.type('acme');
    await page.keyboard.press('Tab'); // the plan select, on its first plan (pro, in id order)
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string>('document.activeElement?.textContent')).toBe('Create tenant');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${cp.url}/console/tenants/acme`);
    await page.waitForSelector('#current-plan');
    expect(await page.textContent('#current-plan')).toBe('pro');

    await page.click('#create-key');
    key = (await page.textContent('#new-key-value'))!;
    expect(key.length).toBeGreaterThan(20);
    await page.waitForSelector('#keys table');
    // The key is in the page once; reloading shows only its prefix.
    await page.reload();
    await page.waitForSelector('#keys table');
    expect(await page.content()).not.toContain(key);
  });

  it('shows the usage of traffic sent through the proxy with that key', async () => {
    await until(async () => (await chat(key)) === 200, 'the proxy to accept the new key');
    for (let i = 0; i < 2; i++) expect(await chat(key)).toBe(200);
    await until(
      async () =>
        (await t.pool.query(`SELECT count(*)::int AS n FROM usage_ledger WHERE tenant_id = 'acme'`)).rows[0]
          .n === 3,
      'the ledger to book 3 requests',
    );
    await page.reload();
    const row = page.locator('#usage-table tr', { hasText: 'gpt-4o-mini' });
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    // 3 requests of 20 tokens at $0.15/$0.60 per million: 3 × (12 × 0.15 + 8 × 0.6) / 1e6.
    expect(cells).toEqual(['gpt-4o-mini', '3', '60', '$0.0000198']);
    await shot('tenant');

    await page.goto(`${cp.url}/console`);
    await page.waitForSelector('#totals .card');
    expect(await page.locator('#totals .value').first().textContent()).toBe('3');
    expect(await page.locator('#top a').first().textContent()).toBe('acme');
    // The chart's numbers, in a table behind a disclosure: the hour the 3 requests came in.
    await page.click('summary:has-text("The chart\'s numbers")');
    const costTable = page.locator('#cost-table table');
    expect(await costTable.locator('thead th').allTextContents()).toEqual([
      'Hour (UTC)',
      'gpt-4o-mini',
      'Total',
    ]);
    // One hour, unless the three requests straddled the turn of an hour.
    const rows = await costTable.locator('tbody tr').count();
    expect(rows === 1 || rows === 2).toBe(true);
    if (rows === 1) {
      const hour = await costTable.locator('tbody tr').first().locator('td').allTextContents();
      expect(hour).toEqual([
        expect.stringMatching(/^\d{4}-\d{2}-\d{2} \d{2}:00$/),
        '$0.0000198',
        '$0.0000198',
      ]);
    }
    await shot('overview');

    await page.goto(`${cp.url}/console/tenants?q=ACM`);
    await page.waitForSelector('#list table');
    const line = await page.locator('#list tbody tr').first().locator('td').allTextContents();
    expect(line.slice(0, 4)).toEqual(['acme', 'pro', 'active', '$0.0000198']);
    expect(line[4]).toMatch(/UTC$/);
    await shot('tenants');
    await page.fill('#q', 'nobody');
    await page.click('#search button');
    await page.waitForSelector('text=No tenant matches.');
  });

  it('changes the plan, suspends and reactivates, and revokes the key (the proxy refuses it)', async () => {
    await page.goto(`${cp.url}/console/tenants/acme`);
    await page.waitForSelector('#current-plan');
    await page.selectOption('#plan', 'starter');
    await page.click('#plan-form button');
    await page.waitForSelector('#current-plan:text("starter")');
    expect((await admin('GET', '/v1/tenants/acme')).body.plan).toBe('starter');

    await page.click('#toggle-status');
    await page.waitForSelector('#current-status:text("suspended")');
    await page.click('#toggle-status');
    await page.waitForSelector('#current-status:text("active")');

    page.once('dialog', (dialog) => dialog.accept());
    await page.click('#keys button:text("Revoke")');
    await page.waitForSelector('#keys td:text("revoked")');
    await until(async () => (await chat(key)) === 401, 'the proxy to refuse the revoked key');
  });

  it('filters the audit log by tenant and actor', async () => {
    await page.goto(`${cp.url}/console/audit?tenant=acme&actor=admin:console`);
    await page.waitForSelector('#list table');
    const actions = await page.locator('#list tbody tr td:nth-child(3)').allTextContents();
    expect(actions).toEqual([
      'key.revoke',
      'tenant.update',
      'tenant.update',
      'tenant.update',
      'key.create',
      'tenant.create',
    ]);
    await shot('audit');
    await page.fill('#actor', 'someone-else');
    await page.click('#filter button');
    await page.waitForSelector('text=No entries.');
    // The name alone, as typed into the form, finds the same entries (the list was empty above).
    await page.fill('#actor', 'console');
    await page.click('#filter button');
    await page.waitForSelector('#list tbody tr');
    expect(await page.locator('#list tbody tr td:nth-child(3)').allTextContents()).toEqual(actions);
  });

  it('exports the usage as CSV', async () => {
    // Every request the proxy served, including any while the revocation propagated.
    await until(
      async () =>
        (await t.pool.query(`SELECT count(*)::int AS n FROM usage_ledger WHERE tenant_id = 'acme'`)).rows[0]
          .n === served,
      'the ledger to book every served request',
    );
    await page.goto(`${cp.url}/console/export`);
    await page.fill('#tenant', 'acme');
    const today = new Date().toISOString().slice(0, 10);
    await page.fill('#from', today);
    await page.fill('#to', today);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#export-form button[type=submit]'),
    ]);
    const csv = await readFile((await download.path())!, 'utf8');
    const lines = csv.trim().split('\r\n');
    expect(lines[0]).toBe(
      'day,model,price_version,requests,input_tokens,output_tokens,cached_input_tokens,cache_write_tokens,reasoning_tokens,cost_usd,unpriced_requests,provenance',
    );
    expect(lines).toHaveLength(2);
    const [day, model, version, requests, input, output, ...rest] = lines[1]!.split(',');
    expect(rest.at(-1)).toBe('reported');
    expect([day, model, requests, input, output]).toEqual([
      today,
      'gpt-4o-mini',
      String(served),
      String(12 * served),
      String(8 * served),
    ]);
    expect(version).toMatch(/^\d+$/);
    expect(rest.slice(0, 3)).toEqual(['0', '0', '0']);
    expect(rest[4]).toBe('0');
    // An exact decimal (no float noise, no exponent): $6.6e-6 per request.
    expect(rest[3]).toMatch(/^0\.\d+$/);
    expect(Number(rest[3])).toBeCloseTo(served * 0.0000066, 12);
    await shot('export');
  });

  it('says a tenant that is not there is not there, rather than export an empty file', async () => {
    await page.goto(`${cp.url}/console/export`);
    await page.fill('#tenant', 'nobody');
    const today = new Date().toISOString().slice(0, 10);
    await page.fill('#from', today);
    await page.fill('#to', today);
    let downloaded = false;
    page.once('download', () => (downloaded = true));
    await page.click('#export-form button[type=submit]');
    await page.waitForFunction("document.getElementById('status')?.textContent?.includes('no tenant')");
    expect(await page.textContent('#status')).toContain('no tenant "nobody"');
    expect(downloaded).toBe(false);
  });

  it('makes one key of a double click on Create a key, and shows it', async () => {
    const keys = async () => (await admin('GET', '/v1/tenants/acme/keys')).body.items.length as number;
    const before = await keys();
    await page.goto(`${cp.url}/console/tenants/acme`);
    await page.waitForSelector('#keys table');
    await page.dblclick('#create-key');
    await page.waitForSelector('#new-key-value');
    await page.waitForLoadState('networkidle');
    expect(await keys()).toBe(before + 1);
    expect(await page.textContent('#status')).toContain('New key created');
  });

  it('shows a model without a price as unpriced, not as $0.00', async () => {
    const unpriced = await admin('POST', '/v1/tenants', { id: 'unpriced-co', plan: 'pro' });
    expect(unpriced.status).toBe(201);
    await bookEvents(t.pool, [
      {
        id: '1-0',
        fields: [
          'event',
          JSON.stringify({
            ...usageEvent({
              tenant: 'unpriced-co',
              ts: new Date().toISOString(),
              model: 'no-price',
              input: 5,
              output: 5,
            }),
            tenant_incarnation: unpriced.body.incarnation,
          }),
        ],
      },
    ]);
    await page.goto(`${cp.url}/console/tenants/unpriced-co`);
    await page.waitForSelector('#usage-table table');
    expect(await page.textContent('#usage-table')).toContain('$0.00 + 1 unpriced');
  });

  it('is readable on a phone-sized screen', async () => {
    // The longest tenant id there can be, and a month of a billion tokens and a million dollars:
    // both ran off a phone's screen, and the figures over each other on any screen.
    const long = `l${'o'.repeat(61)}g`;
    const created = await admin('POST', '/v1/tenants', { id: long, plan: 'pro' });
    expect(created.status).toBe(201);
    await bookEvents(t.pool, [
      {
        id: '2-0',
        fields: [
          'event',
          JSON.stringify({
            ...usageEvent({
              tenant: long,
              ts: new Date().toISOString(),
              model: 'gpt-4o-mini',
              input: 1e12,
              output: 1e12,
            }),
            cost_usd: 1_000_000,
            tenant_incarnation: created.body.incarnation,
          }),
        ],
      },
    ]);
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [path, name] of [
      ['/console', 'overview-phone'],
      ['/console/tenants/acme', 'tenant-phone'],
      [`/console/tenants/${long}`, null],
      ['/console/plans', null],
      ['/console/audit', null],
    ] as const) {
      await page.goto(`${cp.url}${path}`);
      await page.waitForLoadState('networkidle');
      expect(await fitsWidth(), path).toBe(true);
      if (name) await shot(name);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('refuses a form posted from another origin (CSRF)', async () => {
    const [response] = await Promise.all([
      page.waitForResponse(
        (r) => r.url().endsWith('/console/api/v1/tenants') && r.request().method() === 'POST',
      ),
      page.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`),
    ]);
    expect(response.status()).toBe(403);
    expect((await admin('GET', '/v1/tenants/evil')).status).toBe(404);
  });

  it('erases the tenant behind a typed confirmation and shows the report', async () => {
    await page.goto(`${cp.url}/console/tenants/acme`);
    await page.waitForSelector('#current-plan');
    await page.fill('#confirm', 'acm');
    expect(await page.isDisabled('#erase')).toBe(true);
    await page.fill('#confirm', 'acme');
    expect(await page.isDisabled('#erase')).toBe(false);
    await page.click('#erase');
    await page.waitForSelector('#erasure-report:not([hidden])', { timeout: 20_000 });
    const report = JSON.parse((await page.textContent('#report'))!);
    expect(report).toMatchObject({ tenant: 'acme' });
    await shot('erasure');
    expect((await admin('GET', '/v1/tenants/acme')).status).toBe(404);
  });

  it('signs out, after which the old session opens nothing', async () => {
    const cookie = (await page.context().cookies())[0]!.value;
    await page.goto(`${cp.url}/console`);
    await Promise.all([page.waitForURL(`${cp.url}/console/login`), page.click('.signout button')]);
    const res = await request(`${cp.url}/console/api/overview`, {
      headers: { cookie: `lk_console=${cookie}` },
    });
    await res.body.text();
    expect(res.statusCode).toBe(401);
    expect(problems).toEqual([]);
  });

  it('signs in and reaches a tenant page with the keyboard alone, focus always visible', async () => {
    expect((await admin('POST', '/v1/plans', { id: 'keyboard', models: { default: 'm' } })).status).toBe(201);
    expect((await admin('POST', '/v1/tenants', { id: 'keyboard-co', plan: 'keyboard' })).status).toBe(201);
    // A fresh browser context: no session, and no mouse event ever sent to this page.
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const kb = await context.newPage();
    kb.setDefaultTimeout(8000);
    kb.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    /** The focused element, and whether the focus ring shows (the :focus-visible outline, on screen). */
    interface Focus {
      id: string;
      text: string;
      href: string | null;
      ring: boolean;
    }
    // A string, as elsewhere in this file: the test's TypeScript has no DOM types.
    const focused = () =>
      kb.evaluate<Focus>(`(() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        const box = el.getBoundingClientRect();
        return {
          id: el.id,
          text: (el.textContent || '').trim(),
          href: el.getAttribute('href'),
          ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 &&
            box.width > 0 && box.height > 0 && box.right > 0 && box.bottom > 0 &&
            box.left < innerWidth && box.top < innerHeight,
        };
      })()`);
    /** Tabs forward until `wanted` holds, checking the ring on every stop on the way. */
    async function tabTo(wanted: (f: Focus) => boolean, what: string) {
      for (let stops = 0; stops < 60; stops++) {
        await kb.keyboard.press('Tab');
        const now = await focused();
        expect(now.ring, `focus ring on ${JSON.stringify(now)}`).toBe(true);
        if (wanted(now)) return;
      }
      throw new Error(`Tab never reached ${what}`);
    }

    try {
      await kb.goto(`${cp.url}/console/login`);
      // The token field has autofocus, which Chromium applies at its next rendering step,
      // possibly after `goto` has returned. Checking before it and then tabbing raced it:
      // once under CI, most likely, the autofocus reached the field just after the check,
      // and the Tabs meant to reach it went past the button and off the page. So wait for
      // it first; without autofocus, Tab from the top reaches the field too.
      await kb
        .waitForFunction(`document.activeElement && document.activeElement.id === 'token'`, undefined, {
          timeout: 2000,
        })
        .catch(() => undefined);
      if ((await focused()).id !== 'token') await tabTo((f) => f.id === 'token', 'the token field');
      await kb.keyboard.type(t.adminToken);
      await tabTo((f) => f.text === 'Sign in', 'the sign-in button');
      await Promise.all([kb.waitForURL(`${cp.url}/console`), kb.keyboard.press('Enter')]);

      await tabTo((f) => f.text === 'Skip to content', 'the skip link');
      await tabTo((f) => f.text === 'Tenants' && f.href === '/console/tenants', 'the Tenants link');
      await Promise.all([kb.waitForURL(`${cp.url}/console/tenants`), kb.keyboard.press('Enter')]);
      await kb.waitForSelector('#list a[href="/console/tenants/keyboard-co"]');

      await tabTo((f) => f.href === '/console/tenants/keyboard-co', 'the keyboard-co link');
      await Promise.all([kb.waitForURL(`${cp.url}/console/tenants/keyboard-co`), kb.keyboard.press('Enter')]);
      await kb.waitForSelector('#current-plan:text("keyboard")');
      // And on the tenant page the first stop is the skip link, shown on screen when focused.
      await tabTo((f) => f.text === 'Skip to content', 'the skip link on the tenant page');
    } finally {
      await context.close();
    }
    expect(problems).toEqual([]);
  });
});
