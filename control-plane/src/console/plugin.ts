/**
 * The web console at /console: sign-in and sign-out, the pages (server-rendered shells that
 * a page script fills), their static assets (the scripts beside this file and Chart.js from
 * node_modules; nothing from the internet) and the console API (api.ts).
 *
 * Only the sign-in page and the assets answer without a session; the assets are the same
 * code for every installation and hold no data. A page without a session redirects to the
 * sign-in page, an API call gets 401.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { TENANT_ID_PATTERN } from '@lanekeeper/contract';
import type { AppDeps } from '../app.js';
import { throttled, tokenMatches, type TokenGuard } from '../http/auth.js';
import { registerConsoleApi } from './api.js';
import { consolePage, loginPage, tenantPage, type PageId } from './pages.js';
import {
  createSessions,
  requireCsrf,
  requireSameOrigin,
  sessionCookie,
  sessionForCsrf,
  sessionsNamed,
  type Session,
  type Sessions,
} from './session.js';

const hidden = { hide: true };

/**
 * No inline script or style, nothing from another origin, no framing: an injected string
 * could not run even if escaping failed somewhere.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The assets, read once at startup: a fixed list, so no request path ever reaches the file system. */
function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const here = dirname(fileURLToPath(import.meta.url));
  const chartJs = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
  const files: [string, string][] = [
    ['chart.umd.min.js', chartJs],
    ...[
      'console.css',
      'common.js',
      'charts.js',
      'overview.js',
      'tenants.js',
      'tenant.js',
      'plans.js',
      'pricing.js',
      'audit.js',
      'export.js',
    ].map((name): [string, string] => [name, join(here, 'assets', name)]),
  ];
  return new Map(
    files.map(([name, path]) => [
      name,
      { type: TYPES[name.slice(name.lastIndexOf('.'))]!, body: readFileSync(path) },
    ]),
  );
}

const LIST_PAGES: [string, Exclude<PageId, 'tenant'>][] = [
  ['/console', 'overview'],
  ['/console/tenants', 'tenants'],
  ['/console/plans', 'plans'],
  ['/console/pricing', 'pricing'],
  ['/console/audit', 'audit'],
  ['/console/export', 'export'],
];

async function sessionFrom(sessions: Sessions, request: FastifyRequest) {
  return (await sessionsNamed(sessions, request.headers.cookie))[0];
}

/** Whether the cookie gets `Secure` (see ControlPlaneConfig.consoleSecureCookie). */
function secureCookie(setting: AppDeps['config']['consoleSecureCookie'], request: FastifyRequest): boolean {
  return setting === 'always' || (setting === 'auto' && request.protocol === 'https');
}

function sendPage(reply: FastifyReply, status: number, page: string) {
  return reply.code(status).header('content-type', 'text/html; charset=utf-8').send(page);
}

/** True for a URL under /console, whether or not a console route serves it. */
export function isConsoleUrl(url: string): boolean {
  return url === '/console' || url.startsWith('/console/') || url.startsWith('/console?');
}

/**
 * The console's security headers. Set from the app's root (app.ts) on every answer under
 * /console, a 404 or a malformed URL's 400 included, not only on the console's own routes.
 */
export function setConsoleHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', CSP);
  reply.header('x-frame-options', 'DENY');
  // Not no-referrer: with it Chromium sends `Origin: null` on form posts, and the origin
  // check could no longer tell this console's own forms from anyone else's.
  reply.header('referrer-policy', 'same-origin');
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
}

/**
 * The console as a Fastify plugin. `guard` is the admin API's: wrong tokens at sign-in and as
 * a bearer count together, and the console's calls into the admin API carry the internal mark.
 */
export function consolePlugin(deps: AppDeps, guard: TokenGuard): FastifyPluginAsync {
  return async function console(app: FastifyInstance) {
    const sessions = createSessions(deps.redis, deps.config.keyPrefix, deps.config.adminToken);
    const setting = deps.config.consoleSecureCookie;
    const isSecure = (request: FastifyRequest) => secureCookie(setting, request);
    const servedOverHttps = setting === 'always';
    const assets = loadAssets();

    // The sign-in and sign-out forms post urlencoded bodies; this parser exists only in here.
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 16 * 1024 },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
    );

    // A typed or bookmarked trailing slash reached a JSON 404.
    app.get('/console/', { config: hidden }, async (_request, reply) => reply.redirect('/console', 308));

    app.get<{ Params: { name: string } }>(
      '/console/assets/:name',
      { config: hidden },
      async (request, reply) => {
        const asset = assets.get(request.params.name);
        if (!asset) return reply.code(404).header('content-type', 'text/plain').send('no such asset');
        return reply.header('content-type', asset.type).header('cache-control', 'no-cache').send(asset.body);
      },
    );

    app.get('/console/login', { config: hidden }, async (request, reply) => {
      if (await sessionFrom(sessions, request)) return reply.redirect('/console', 303);
      return sendPage(reply, 200, loginPage());
    });

    app.post<{ Body: { token?: unknown } | undefined }>(
      '/console/login',
      { config: hidden },
      async (request, reply) => {
        // A page elsewhere must not sign a browser into this console (login CSRF).
        requireSameOrigin(request, servedOverHttps);
        const token = request.body?.token;
        const right =
          typeof token === 'string' && token !== '' && tokenMatches(token, deps.config.adminToken);
        const refusal = await throttled(guard.throttle, request, reply, !right);
        if (refusal) {
          const wait = `${refusal.retryAfterS} second${refusal.retryAfterS === 1 ? '' : 's'}`;
          return sendPage(
            reply,
            429,
            loginPage(`Too many wrong tokens from this address. Try again in ${wait}.`),
          );
        }
        if (!right) {
          return sendPage(reply, 401, loginPage('That is not the admin token.'));
        }
        // The browser's old session ends here: its cookie is about to be replaced, and a
        // session no cookie holds any more would otherwise stay valid for hours.
        for (const old of await sessionsNamed(sessions, request.headers.cookie))
          await sessions.destroy(old.id);
        const { id } = await sessions.create();
        return reply.header('set-cookie', sessionCookie(id, isSecure(request))).redirect('/console', 303);
      },
    );

    app.post<{ Body: { csrf?: unknown } | undefined }>(
      '/console/logout',
      { config: hidden },
      async (request, reply) => {
        // Every session the browser named ends, once the form's CSRF token matches one of them.
        const named = await sessionsNamed(sessions, request.headers.cookie);
        if (named.length > 0) {
          const csrf = request.body?.csrf;
          requireCsrf(request, sessionForCsrf(named, csrf).session, csrf, servedOverHttps);
          for (const { id } of named) await sessions.destroy(id);
        }
        return reply
          .header('set-cookie', sessionCookie(undefined, isSecure(request)))
          .redirect('/console/login', 303);
      },
    );

    // The pages: a session or a redirect to sign in.
    await app.register(async (pages) => {
      const sessionOf = new WeakMap<FastifyRequest, Session>();
      pages.addHook('onRequest', async (request, reply) => {
        const found = await sessionFrom(sessions, request);
        if (!found) return reply.redirect('/console/login', 303);
        sessionOf.set(request, found.session);
      });
      for (const [path, page] of LIST_PAGES) {
        pages.get(path, { config: hidden }, async (request, reply) =>
          sendPage(reply, 200, consolePage(page, sessionOf.get(request)!.csrf)),
        );
      }
      pages.get<{ Params: { id: string } }>(
        '/console/tenants/:id',
        { config: hidden },
        async (request, reply) => {
          const { id } = request.params;
          if (!TENANT_ID_PATTERN.test(id)) {
            return reply.code(404).header('content-type', 'text/plain').send('no such tenant');
          }
          return sendPage(reply, 200, tenantPage(id, sessionOf.get(request)!.csrf));
        },
      );
    });

    await app.register(async (api) => registerConsoleApi(api, deps, sessions, guard.internal));
  };
}
