/**
 * Model names are data from proxies and upstreams: one spelled like a property every plain
 * object inherits ("constructor", "__proto__", "toString", "hasOwnProperty") must show in the
 * console like any other name, not break the overview and the tenant page with a 500. The
 * events go in through POST /v1/usage-events, as a proxy without Redis books them; the
 * console's API is read over HTTP with a session, and the two pages in Chromium, which must
 * draw every name (the chart's datasets, the tenant's table).
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from './helpers/http.js';
import { startSeeded } from './helpers/seeded.js';
import type { TestEnv } from './helpers/test-env.js';
import { usageEvent } from './helpers/usage-event.js';

const CHROMIUM = '/usr/bin/chromium';
const NAMES = ['__proto__', 'constructor', 'hasOwnProperty', 'small', 'toString', 'valueOf'];
const TENANT = 'proto-names';

let t: TestEnv;
let cp: { url: string; close(): Promise<void> };
let cookie: string;
let browser: Browser | undefined;
/** Script errors and refused requests seen by any page (the pricing form's reply aside). */
const errors: string[] = [];

/** A new page in the browser, signed in through the form and showing the overview. */
async function signedInPage(): Promise<Page> {
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await browser.newPage();
  page.setDefaultTimeout(8000);
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('response', (res) => {
    if (res.status() >= 400 && !res.url().endsWith('/pricing/versions'))
      errors.push(`${res.status()} ${res.url()}`);
  });
  await page.goto(`${cp.url}/console/login`);
  await page.fill('#token', t.adminToken);
  await page.click('button[type=submit]');
  await page.waitForURL(`${cp.url}/console`);
  return page;
}

interface ModelSeries {
  buckets: string[];
  models: Record<string, { cost_usd: number[]; tokens: number[]; requests: number[] }>;
}

/** Requests per model in a series, keyed by the own keys of the JSON (what the page scripts read). */
function requestsByModel(series: ModelSeries): Record<string, number> {
  return Object.fromEntries(
    Object.entries(series.models).map(([name, values]) => [name, values.requests.reduce((a, b) => a + b, 0)]),
  );
}

beforeAll(async () => {
  ({ t, cp } = await startSeeded({ extra: { LANEKEEPER_LEDGER_ENABLED: 'false' }, tenants: [TENANT] }));
  const ts = new Date().toISOString();
  const booked = await call(cp.url, 'POST', '/v1/usage-events', {
    token: t.proxyToken,
    body: { events: NAMES.map((model) => usageEvent({ tenant: TENANT, ts, model, input: 100, output: 50 })) },
  });
  expect(booked.status).toBe(200);
  expect(booked.body.inserted).toBe(NAMES.length);
  const signIn = await call(cp.url, 'POST', '/console/login', {
    rawBody: JSON.stringify({ token: t.adminToken }),
  });
  expect(signIn.status).toBe(303);
  cookie = String(signIn.headers['set-cookie']).split(';')[0]!;
});

afterAll(async () => {
  await browser?.close();
  await cp?.close();
  await t?.dispose();
});

describe('model names spelled like Object.prototype properties', () => {
  const oneEach = Object.fromEntries(NAMES.map((name) => [name, 1]));

  it('each get their own series in the overview', async () => {
    const res = await call(cp.url, 'GET', '/console/api/overview', { headers: { cookie } });
    expect(res.status).toBe(200);
    expect(res.body.last_24h.requests).toBe(NAMES.length);
    expect(requestsByModel(res.body.cost_per_hour)).toEqual(oneEach);
  });

  it("each get their own series in the tenant's usage by hour and by day", async () => {
    for (const granularity of ['hour', 'day']) {
      const res = await call(
        cp.url,
        'GET',
        `/console/api/tenants/${TENANT}/usage-by-model?granularity=${granularity}`,
        { headers: { cookie } },
      );
      expect(res.status, granularity).toBe(200);
      expect(requestsByModel(res.body), granularity).toEqual(oneEach);
    }
  });

  it('are drawn by the overview and the tenant page in a browser, without a script error', async () => {
    const page = await signedInPage();
    // Polled from here: waitForFunction polls with eval in the page, which the console's CSP forbids.
    let labels: string[] | undefined;
    for (const deadline = Date.now() + 8000; !labels && Date.now() < deadline;) {
      labels = await page.evaluate<string[] | undefined>(
        `window.Chart?.getChart(document.getElementById('cost-chart'))?.data.datasets.map((d) => d.label)`,
      );
      if (!labels) await new Promise((r) => setTimeout(r, 50));
    }
    expect(labels?.sort()).toEqual(NAMES);

    await page.goto(`${cp.url}/console/tenants/${TENANT}`);
    await page.waitForSelector('#usage-table table');
    const rows = await page.$$eval('#usage-table tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(rows.map((cells) => [cells[0], cells[1]]).sort()).toEqual(NAMES.map((name) => [name, '1']));
    expect(errors).toEqual([]);
  });

  it('are sent as typed by the pricing form, "__proto__" included', async () => {
    const page = await signedInPage();
    await page.goto(`${cp.url}/console/pricing`);
    await page.waitForSelector('[name="row0.model"]');
    await page.click('#add-row');
    await page.fill('#effective_from', '2030-01-01T00:00');
    for (const [row, model] of ['__proto__', 'constructor'].entries()) {
      await page.fill(`[name="row${row}.model"]`, model);
      await page.fill(`[name="row${row}.input"]`, '1');
      await page.fill(`[name="row${row}.output"]`, '2');
    }
    const posted = page.waitForRequest((r) => r.url().endsWith('/console/api/v1/pricing/versions'));
    await page.click('#price-form button[type=submit]');
    const body = JSON.parse((await posted).postData()!) as { prices: Record<string, unknown> };
    expect(Object.keys(body.prices).sort()).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(body.prices, '__proto__')?.value).toEqual({ input: 1, output: 2 });
  });
});
