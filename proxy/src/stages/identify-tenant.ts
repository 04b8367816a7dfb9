/**
 * Finds out who is calling. Identity sources are tried in the configured order; the first
 * that names a tenant wins. A source that finds a credential it cannot accept fails the
 * request at once (a bad key is never retried as something weaker). Header, query and
 * subdomain identify a tenant only when `trust_unauthenticated` allows it, because anyone
 * can write them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext, ResolvedTenant } from '../context.js';
import {
  IdentityProviderUnavailableError,
  InvalidApiKeyError,
  InvalidTokenError,
  MissingApiKeyError,
  TenantInactiveError,
  TenantRequiredError,
  TenantUnknownError,
  type ProxyError,
} from '../errors.js';
import { HEADER_RETRY_AFTER } from '../headers.js';
import { bearerToken, presentedApiKey, tenantForKey } from '../identity/credentials.js';
import { JwksUnavailableError, looksLikeJwt } from '../identity/jwt.js';
import type { Runtime } from '../runtime.js';
import { CONTINUE, reply, type RequestVerdict, type Stage } from '../stage.js';

/** A tenant id to look up, or the tenant itself when the key index already held it. */
type Named = { tenant: string } | { resolved: ResolvedTenant };
type Found = Named | { error: ProxyError } | undefined;
type Source = Runtime['config']['identity']['sources'][number];

function firstHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const v = Array.isArray(value) ? value[0] : value;
  return v?.trim() || undefined;
}

function fromSubdomain(runtime: Runtime, host: string | undefined): string | undefined {
  if (!host) return undefined;
  const hostname = host.replace(/:\d+$/, '').toLowerCase();
  const base = runtime.config.identity.subdomain?.base_domain?.toLowerCase();
  if (base) {
    if (!hostname.endsWith(`.${base}`)) return undefined;
    const label = hostname.slice(0, -(base.length + 1));
    return label.includes('.') ? undefined : label || undefined;
  }
  const labels = hostname.split('.');
  if (labels.length < 3 || /^\d+$/.test(labels[labels.length - 1] ?? '')) return undefined;
  return labels[0];
}

/** Seconds a client waits before retrying a token the IdP's keys could not be fetched for. */
const IDP_RETRY_AFTER_S = 5;

function idpUnavailable(): ProxyError {
  const error = new IdentityProviderUnavailableError(
    'The identity provider could not be reached to check the bearer token; try again shortly.',
  );
  error.headers = { [HEADER_RETRY_AFTER]: String(IDP_RETRY_AFTER_S) };
  return error;
}

/** What a source found; only a JWT (whose keys may have to be fetched) answers later. */
function trySource(source: Source, ctx: RequestContext, query: URLSearchParams): Found | Promise<Found> {
  const { runtime, clientHeaders: headers } = ctx;
  const identity = runtime.config.identity;
  switch (source) {
    case 'api_key': {
      const key = presentedApiKey(headers, query);
      if (key === undefined) return undefined;
      const found = tenantForKey(runtime.keyIndex, key);
      if (found !== undefined) {
        ctx.apiKeyHash = found.hash;
        return { resolved: found.tenant };
      }
      // A JWT in Authorization is verified here, wherever jwt sits in the order, so no later
      // source (a trusted header) can name a tenant while a presented token goes unchecked.
      // The jwt source reads only Authorization, so a JWT-shaped x-api-key is just a bad key.
      if (identity.sources.includes('jwt') && key === bearerToken(headers) && looksLikeJwt(key))
        return trySource('jwt', ctx, query);
      return {
        error: new InvalidApiKeyError(
          'The API key is not valid. Check the key your provider of this service gave you.',
        ),
      };
    }
    case 'jwt': {
      const token = bearerToken(headers);
      if (token === undefined || !looksLikeJwt(token) || !runtime.jwt) return undefined;
      return runtime.jwt.tenantOf(token).then(
        (tenant): Found => ({ tenant }),
        (error: unknown): Found => ({
          error:
            error instanceof JwksUnavailableError
              ? idpUnavailable()
              : new InvalidTokenError(`The bearer token was refused: ${(error as Error).message}`),
        }),
      );
    }
    case 'header': {
      if (!identity.trust_unauthenticated) return undefined;
      const tenant = firstHeader(headers, identity.header);
      return tenant === undefined ? undefined : { tenant };
    }
    case 'query': {
      if (!identity.trust_unauthenticated) return undefined;
      const tenant = query.get(identity.query) ?? undefined;
      return tenant ? { tenant } : undefined;
    }
    case 'subdomain': {
      if (!identity.trust_unauthenticated) return undefined;
      const tenant = fromSubdomain(runtime, firstHeader(headers, 'host'));
      return tenant === undefined ? undefined : { tenant };
    }
  }
}

/** The verdict once a source has named a tenant (or refused the credential). */
function verdictFor(ctx: RequestContext, found: Named | { error: ProxyError }): RequestVerdict {
  if ('error' in found) return reply(found.error);
  if ('resolved' in found) return admitTenant(ctx, found.resolved);
  const tenant = ctx.runtime.tenants.get(found.tenant);
  if (!tenant) {
    return reply(
      new TenantUnknownError(`Tenant "${found.tenant.slice(0, 64)}" is not known to this service.`),
    );
  }
  return admitTenant(ctx, tenant);
}

/** A known tenant: on its way if active, refused (and named in logs and metrics) if suspended. */
function admitTenant(ctx: RequestContext, tenant: ResolvedTenant): RequestVerdict {
  if (tenant.config.status !== 'active') {
    // Known but suspended: attribute the refusal to it in logs and metrics.
    ctx.tenant = tenant;
    return reply(
      new TenantInactiveError(`Tenant "${tenant.id}" is suspended. Contact the service operator.`),
    );
  }
  ctx.tenant = tenant;
  return CONTINUE;
}

/** An Authorization value that is not `Bearer <token>`, e.g. a bare key or another scheme. */
function unschemedAuthorization(headers: IncomingHttpHeaders): string | undefined {
  const auth = firstHeader(headers, 'authorization');
  if (auth === undefined || bearerToken(headers) !== undefined) return undefined;
  return auth;
}

/** What is wrong with an Authorization value, without echoing it: it is probably the key itself. */
function describeAuthorization(auth: string): string {
  if (/^bearer$/i.test(auth)) return 'names the Bearer scheme but carries no key';
  const scheme = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,19})\s+\S/.exec(auth)?.[1];
  return scheme === undefined ? 'has no scheme' : `uses the "${scheme}" scheme`;
}

/** Where the client's own SDK puts a key, as its error says it: each dialect's way first. */
function keyHint(ctx: RequestContext): string {
  switch (ctx.dialect?.name) {
    case 'gemini':
      return 'the x-goog-api-key header or the key query parameter (or "Authorization: Bearer <key>")';
    case 'anthropic':
      return 'the x-api-key header (or "Authorization: Bearer <key>")';
    default:
      return '"Authorization: Bearer <key>" (or x-api-key for Anthropic clients)';
  }
}

function nobodyFound(ctx: RequestContext): RequestVerdict {
  const runtime = ctx.runtime;
  if (runtime.config.identity.sources.includes('api_key')) {
    const auth = unschemedAuthorization(ctx.clientHeaders);
    if (auth !== undefined) {
      return reply(
        new MissingApiKeyError(
          `The Authorization header ${describeAuthorization(auth)}; this service expects ${keyHint(ctx)}.`,
        ),
      );
    }
    return reply(new MissingApiKeyError(`No API key was provided. Send it as ${keyHint(ctx)}.`));
  }
  return reply(new TenantRequiredError('The request does not identify a tenant.'));
}

/**
 * Tries the sources from `start` on. Synchronous unless a JWT must be verified, so an
 * API-key request costs no promise.
 */
function identify(
  ctx: RequestContext,
  query: URLSearchParams,
  start: number,
): RequestVerdict | Promise<RequestVerdict> {
  const sources = ctx.runtime.config.identity.sources;
  for (let i = start; i < sources.length; i++) {
    const found = trySource(sources[i] as Source, ctx, query);
    if (found instanceof Promise) {
      return found.then((settled) =>
        settled === undefined ? identify(ctx, query, i + 1) : verdictFor(ctx, settled),
      );
    }
    if (found !== undefined) return verdictFor(ctx, found);
  }
  return nobodyFound(ctx);
}

export function createIdentifyTenantStage(): Stage {
  return {
    name: 'identify-tenant',
    // Before the body: a stranger's upload is never buffered or parsed.
    onHeaders(ctx) {
      return identify(ctx, new URLSearchParams(ctx.request.query), 0);
    },
    onRequest(ctx) {
      if (ctx.judgedBeforeBody) return CONTINUE;
      // The config changed while the body arrived: judged again, as a new request would be.
      ctx.tenant = undefined;
      ctx.apiKeyHash = undefined;
      return identify(ctx, new URLSearchParams(ctx.request.query), 0);
    },
  };
}
