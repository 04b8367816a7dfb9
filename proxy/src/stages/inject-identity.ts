/**
 * Builds the request the upstream receives. The client's credentials never pass (the
 * configured upstream headers are set instead), hop-by-hop headers are dropped as RFC 9110
 * requires (including those named in Connection), any tenant/plan headers the client sent
 * are removed before ours are set, so a tenant can never spoof another (nor through a
 * spelling with `_` that some servers read as the same name), and the x-forwarded-* headers
 * are appended.
 */
import { CREDENTIAL_QUERY_PARAMS } from '../identity/credentials.js';
import {
  accountHeaderRefused,
  CREDENTIAL_HEADERS,
  HEADER_FORWARDED_FOR,
  HEADER_FORWARDED_HOST,
  HEADER_FORWARDED_PROTO,
  HEADER_LANEKEEPER_REQUEST_ID,
  HOP_BY_HOP_HEADERS,
} from '../headers.js';
import { FIELD_MASK_HEADER, FIELD_MASK_PARAMS, googleParamsApply } from '../request/google-system-params.js';
import { CONTINUE, type Stage } from '../stage.js';
import { perConfig } from '../config/derived.js';

/** inject_headers' defaults (config/schema.ts). */
const DEFAULT_TENANT_HEADER = 'x-tenant-id';
const DEFAULT_PLAN_HEADER = 'x-tenant-plan';

/** Headers the proxy always sets itself. */
const RECOMPUTED = new Set(['host', 'content-length', 'accept-encoding', 'expect']);

const CREDENTIALS = new Set<string>(CREDENTIAL_HEADERS);

/**
 * The client's own, never the upstream's: a browser tenant's cookies are for its site, not
 * the provider, and a method override (which Google's APIs honour on a POST) would run a
 * method other than the one `allow_paths` checked.
 */
const CLIENT_ONLY = new Set(['cookie', 'x-http-method-override', 'x-http-method', 'x-method-override']);

function connectionTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((token) => token.trim().toLowerCase())
    .filter(Boolean);
}

/** Every upstream's header names: a client header by one of these names never passes. */
const upstreamHeaderNames = perConfig(
  (config): ReadonlySet<string> =>
    new Set(
      Object.values(config.upstreams).flatMap((u) =>
        Object.keys(u.headers).map((name) => name.toLowerCase()),
      ),
    ),
);

/**
 * Header names the proxy sets, strips or reads for identity, for this config. Some servers
 * fold `_` into `-` (CGI, WSGI and Rack turn both into HTTP_X_TENANT_ID; some frameworks
 * normalise the same way), so a client's `x_tenant_id` could reach them as the injected
 * `x-tenant-id`: any client header that folds onto one of these is dropped too.
 */
const protectedFor = perConfig((config): ReadonlySet<string> => {
  const { identity } = config;
  return new Set([
    ...HOP_BY_HOP_HEADERS,
    ...RECOMPUTED,
    ...CREDENTIALS,
    ...CLIENT_ONLY,
    identity.inject_headers.tenant,
    identity.inject_headers.plan,
    identity.header,
    // Every upstream's, so no client header can pose as any upstream's credential.
    ...upstreamHeaderNames(config),
    HEADER_FORWARDED_FOR,
    HEADER_FORWARDED_PROTO,
    HEADER_FORWARDED_HOST,
    HEADER_LANEKEEPER_REQUEST_ID,
  ]);
});

/**
 * The tenant and plan header names a client's own value never passes under: the injected
 * ones, the identity header, and the injected ones' defaults whatever the operator renamed
 * them to (an upstream that still reads x-tenant-id must not see a tenant's own claim next
 * to the injected header).
 */
const tenantHeadersFor = perConfig(
  ({ identity }): ReadonlySet<string> =>
    new Set([
      identity.inject_headers.tenant,
      identity.inject_headers.plan,
      identity.header,
      DEFAULT_TENANT_HEADER,
      DEFAULT_PLAN_HEADER,
    ]),
);

/** True for a name with `_` that a folding server would read as a protected one. */
function foldsOntoProtected(name: string, names: ReadonlySet<string>): boolean {
  return name.includes('_') && names.has(name.replaceAll('_', '-'));
}

export function createInjectIdentityStage(): Stage {
  return {
    name: 'inject-identity',
    onRequest(ctx) {
      const { identity } = ctx.runtime.config;
      const upstream = (ctx.upstream ?? ctx.runtime.upstreams[0])?.config;
      const inject = identity.inject_headers;
      const dropped = new Set(connectionTokens(ctx.clientHeaders.connection));
      const tenantHeaders = tenantHeadersFor(ctx.runtime.config);
      const guarded = protectedFor(ctx.runtime.config);
      const credentialNames = upstreamHeaderNames(ctx.runtime.config);
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(ctx.clientHeaders)) {
        if (value === undefined) continue;
        if (
          HOP_BY_HOP_HEADERS.has(name) ||
          RECOMPUTED.has(name) ||
          CREDENTIALS.has(name) ||
          CLIENT_ONLY.has(name) ||
          dropped.has(name) ||
          tenantHeaders.has(name) ||
          credentialNames.has(name) ||
          name === FIELD_MASK_HEADER ||
          accountHeaderRefused(name, upstream) ||
          // The body goes re-serialised as plain JSON, whatever encoding the client named.
          (name === 'content-encoding' && ctx.request.body !== undefined) ||
          foldsOntoProtected(name, guarded)
        )
          continue;
        out[name] = value;
      }
      for (const [name, value] of Object.entries(upstream?.headers ?? {})) out[name.toLowerCase()] = value;
      // Metering parses the response; asking for identity keeps it readable. Should an
      // upstream compress anyway, the server decodes it before any stage sees it.
      out['accept-encoding'] = 'identity';
      if (ctx.tenant) {
        out[inject.tenant] = ctx.tenant.id;
        out[inject.plan] = ctx.tenant.planName;
      }
      const priorFor = ctx.clientHeaders[HEADER_FORWARDED_FOR];
      const prior = Array.isArray(priorFor) ? priorFor.join(', ') : priorFor;
      out[HEADER_FORWARDED_FOR] = prior ? `${prior}, ${ctx.remoteAddress}` : ctx.remoteAddress;
      out[HEADER_FORWARDED_PROTO] = ctx.secure ? 'https' : 'http';
      const host = ctx.clientHeaders.host;
      if (host && !ctx.clientHeaders[HEADER_FORWARDED_HOST]) out[HEADER_FORWARDED_HOST] = host;
      out[HEADER_LANEKEEPER_REQUEST_ID] = ctx.id;
      ctx.upstreamHeaders = out;

      if (ctx.request.query !== '') {
        const query = new URLSearchParams(ctx.request.query);
        // In any case: `KEY=` identifies no one here, but it is a key all the same.
        for (const name of [...query.keys()])
          if (CREDENTIAL_QUERY_PARAMS.has(name.toLowerCase())) query.delete(name);
        if (identity.sources.includes('query')) query.delete(identity.query);
        if (googleParamsApply(ctx)) for (const param of FIELD_MASK_PARAMS) query.delete(param);
        ctx.upstreamQuery = query.toString();
      }
      return CONTINUE;
    },
  };
}
