/**
 * GET /docs: Swagger UI over /openapi.json, served by the control plane itself. A real
 * Chromium (Debian's, as the console test uses) with every request off this origin blocked
 * renders the API's operations, so it works with no internet; and only the page's own
 * files can be fetched under /docs.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../src/main.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';

const CHROMIUM = '/usr/bin/chromium';

let t: TestEnv;
let cp: RunningControlPlane;
let browser: Browser | undefined;

beforeAll(async () => {
  t = await createTestEnv();
  cp = await startControlPlane(t.env);
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await cp?.close();
  await t?.dispose();
});

describe('/docs', () => {
  it('serves the viewer page and its assets from the control plane, with a CSP and nothing from elsewhere', async () => {
    const page = await fetch(`${cp.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script src="/docs/swagger-ui-bundle.js"></script>');
    expect(html).not.toMatch(/https?:\/\/|src="\/\//);
    const bundle = await fetch(`${cp.url}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(500_000);
    const init = await (await fetch(`${cp.url}/docs/docs-init.js`)).text();
    expect(init).toContain("url: '/openapi.json'");
  });

  it.each([
    '/docs/package.json',
    '/docs/index.html',
    '/docs/..%2Fpackage.json',
    '/docs/%2e%2e%2f%2e%2e%2fpackage.json',
    '/docs/swagger-ui-bundle.js.map',
    '/docs/constructor',
    '/docs/__proto__',
  ])('refuses %s with 404', async (path) => {
    const response = await fetch(`${cp.url}${path}`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain('"version"');
  });

  it('renders the API in a browser that can reach nothing but the control plane', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await browser.newPage();
    const origin = new URL(cp.url).origin;
    const elsewhere: string[] = [];
    await page.route('**/*', (route) => {
      if (new URL(route.request().url()).origin === origin) return route.continue();
      elsewhere.push(route.request().url());
      return route.abort();
    });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${cp.url}/docs`);
    await page.locator('.opblock').first().waitFor({ timeout: 15_000 });
    const paths = await page.locator('.opblock-summary-path').allTextContents();
    expect(paths.join(' ')).toContain('/v1/tenants');
    expect(paths.join(' ')).toContain('/v1/plans');
    expect(elsewhere).toEqual([]);
    expect(errors).toEqual([]);
  }, 30_000);
});
