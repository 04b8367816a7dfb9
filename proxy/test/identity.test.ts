/**
 * Identity sources, as an attacker and as a legitimate app would use them: JWTs verified
 * against a live JWKS endpoint (with key rotation), and the unauthenticated header, query
 * and subdomain sources, which only count when the operator trusts them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configWarnings, parseConfig } from '../src/config/schema.js';
import { problemsOf, refusedPaths, smallestConfig } from './helpers/config-problems.js';
import { chatCompletion } from './helpers/fake-upstream.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { REFUSING_UPSTREAM } from './helpers/waiting.js';

/** A valid public key for config checks that sign nothing. */
const PUBLIC_JWK =
  '{"kty":"EC","crv":"P-256","x":"2L3vUCTPm5EByfnOs5ifVv7_kghiV5BeWnzscgiDmmY","y":"TtDmEJ9yu9FHNAR8qWtlf8uQEB0ED2ZQ4gSUtk0edVk"}';

const reply = {
  kind: 'json' as const,
  body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
};

async function call(h: Harness, headers: Record<string, string>, path = '/v1/chat/completions') {
  const res = await request(`${h.proxy.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
  });
  return {
    status: res.statusCode,
    body: (await res.body.json()) as { error?: { code: string; message: string } },
  };
}

describe('JWT identity', () => {
  let jwks: Server;
  let keys: JWK[] = [];
  let jwksUrl = '';
  let h: Harness;
  let current: Awaited<ReturnType<typeof generateKeyPair>>;

  const sign = (
    claims: Record<string, unknown>,
    opts: { kid?: string; exp?: string | number; aud?: string; key?: CryptoKeyLike } = {},
  ) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'k1' })
      .setIssuer('https://idp.test')
      .setAudience(opts.aud ?? 'lanekeeper')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(opts.key ?? current.privateKey);
  type CryptoKeyLike = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

  beforeAll(async () => {
    current = await generateKeyPair('RS256');
    keys = [{ ...(await exportJWK(current.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }];
    jwks = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    h = await startHarness({
      reply,
      config: (base) => ({
        ...base,
        identity: {
          sources: ['api_key', 'jwt'],
          // No cooldown, so the rotation test need not wait 30 s for a re-fetch.
          jwt: {
            jwks_url: jwksUrl,
            issuer: 'https://idp.test',
            audience: 'lanekeeper',
            tenant_claim: 'org_id',
            jwks_cooldown_ms: 0,
          },
        },
      }),
    });
  });
  afterAll(async () => {
    await h.close();
    await new Promise((r) => jwks.close(r));
  });

  it('admits a valid token and takes the tenant from the configured claim', async () => {
    const r = await call(h, { authorization: `Bearer ${await sign({ org_id: 'globex', sub: 'user-1' })}` });
    expect(r.status).toBe(200);
    expect(h.lastReceived().headers['x-tenant-id']).toBe('globex');
    expect(h.lastReceived().headers.authorization).toBe('Bearer sk-upstream-secret');
  });

  it.each([
    [
      'an expired token',
      async () => sign({ org_id: 'globex' }, { exp: Math.floor(Date.now() / 1000) - 3600 }),
    ],
    ['a token for another audience', async () => sign({ org_id: 'globex' }, { aud: 'someone-else' })],
    [
      'a token signed by an unknown key',
      async () => sign({ org_id: 'globex' }, { key: (await generateKeyPair('RS256')).privateKey }),
    ],
    [
      'a token that never expires (no exp claim)',
      async () =>
        new SignJWT({ org_id: 'globex' })
          .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
          .setIssuer('https://idp.test')
          .setAudience('lanekeeper')
          .setIssuedAt()
          .sign(current.privateKey),
    ],
    [
      'a token with a forged payload',
      async () => {
        const [head, , sig] = (await sign({ org_id: 'acme' })).split('.');
        const forged = Buffer.from(
          JSON.stringify({ org_id: 'globex', iss: 'https://idp.test', aud: 'lanekeeper', exp: 9999999999 }),
        ).toString('base64url');
        return `${head}.${forged}.${sig}`;
      },
    ],
  ])('refuses %s with 401 invalid_token', async (_name, make) => {
    const before = h.upstream.received.length;
    const r = await call(h, { authorization: `Bearer ${await make()}` });
    expect(r.status).toBe(401);
    expect(r.body.error?.code).toBe('invalid_token');
    expect(h.upstream.received.length).toBe(before);
  });

  it('refuses a valid token naming an unknown tenant with 403 tenant_unknown', async () => {
    const r = await call(h, { authorization: `Bearer ${await sign({ org_id: 'nobody-here' })}` });
    expect(r.status).toBe(403);
    expect(r.body.error?.code).toBe('tenant_unknown');
  });

  it('follows a key rotation: tokens signed by the new key are accepted once the JWKS publishes it', async () => {
    const next = await generateKeyPair('RS256');
    keys = [...keys, { ...(await exportJWK(next.publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' }];
    const r = await call(h, {
      authorization: `Bearer ${await sign({ org_id: 'hooli' }, { kid: 'k2', key: next.privateKey })}`,
    });
    expect(r.status).toBe(200);
    expect(h.lastReceived().headers['x-tenant-id']).toBe('hooli');
  });
});

describe('JWT identity while the JWKS cannot be fetched', () => {
  let h: Harness | undefined;
  let jwks: Server | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
    if (jwks) await new Promise((r) => jwks!.close(r));
    jwks = undefined;
  });

  async function startWith(jwksUrl: string) {
    h = await startHarness({
      reply,
      config: (base) => ({
        ...base,
        identity: {
          sources: ['jwt'],
          jwt: { jwks_url: jwksUrl, tenant_claim: 'org_id', jwks_cooldown_ms: 0 },
        },
      }),
    });
    return h;
  }

  it('answers 503 identity_provider_unavailable with Retry-After, not 401, until the keys can be had', async () => {
    const pair = await generateKeyPair('RS256');
    const published = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' }] };
    let answer: 'error' | 'garbage' | 'keys' = 'error';
    jwks = createServer((_req, res) => {
      if (answer === 'error') res.writeHead(500).end('down');
      else
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(answer === 'garbage' ? '{"keys":' : JSON.stringify(published));
    });
    await new Promise<void>((r) => jwks!.listen(0, '127.0.0.1', r));
    const harness = await startWith(`http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`);
    const token = await new SignJWT({ org_id: 'globex' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setExpirationTime('5m')
      .sign(pair.privateKey);
    const send = () =>
      request(`${harness.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
      });

    for (const state of ['error', 'garbage'] as const) {
      answer = state;
      const res = await send();
      const body = (await res.body.json()) as { error: { code: string } };
      expect(res.statusCode).toBe(503);
      expect(body.error.code).toBe('identity_provider_unavailable');
      expect(res.headers['retry-after']).toBe('5');
    }
    expect(harness.upstream.received).toHaveLength(0);

    answer = 'keys';
    const ok = await send();
    await ok.body.dump();
    expect(ok.statusCode).toBe(200);
    // A key the JWKS does not have is the token's fault: still 401.
    const stranger = await new SignJWT({ org_id: 'globex' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k9' })
      .setExpirationTime('5m')
      .sign((await generateKeyPair('RS256')).privateKey);
    const refused = await request(`${harness.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${stranger}` },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(refused.statusCode).toBe(401);
    expect(((await refused.body.json()) as { error: { code: string } }).error.code).toBe('invalid_token');
  });

  it('logs the outage once, not per request, and its end only when a fetch succeeds', async () => {
    const pair = await generateKeyPair('RS256');
    const published = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' }] };
    let up = true;
    jwks = createServer((_req, res) => {
      if (!up) res.writeHead(500).end('down');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(published));
    });
    await new Promise<void>((r) => jwks!.listen(0, '127.0.0.1', r));
    const port = (jwks.address() as AddressInfo).port;
    // A query may carry a secret of the IdP's: the logged endpoint leaves it out.
    const harness = await startWith(`http://127.0.0.1:${port}/jwks?client_secret=s3cret`);
    const signed = (kid: string) =>
      new SignJWT({ org_id: 'globex' })
        .setProtectedHeader({ alg: 'RS256', kid })
        .setExpirationTime('5m')
        .sign(pair.privateKey);
    const outageLines = () =>
      harness.logs.filter((l) => String(l.msg).startsWith('identity provider (jwks)'));

    expect((await call(harness, { authorization: `Bearer ${await signed('k1')}` })).status).toBe(200);
    up = false;
    // An unknown key id makes the proxy fetch again (cooldown 0): each of these fails.
    for (let i = 0; i < 12; i++)
      expect((await call(harness, { authorization: `Bearer ${await signed('k9')}` })).status).toBe(503);
    // The cached key still verifies: that says nothing about the endpoint being back.
    expect((await call(harness, { authorization: `Bearer ${await signed('k1')}` })).status).toBe(200);
    expect(outageLines()).toEqual([
      expect.objectContaining({
        level: 'warn',
        msg: 'identity provider (jwks) unavailable',
        dependency: 'identity provider (jwks)',
        endpoint: `http://127.0.0.1:${port}/jwks`,
        err: 'the JWKS endpoint answered 500',
      }),
    ]);
    up = true;
    // Fetched, and the key is still not there: the endpoint is back, the token is refused.
    expect((await call(harness, { authorization: `Bearer ${await signed('k9')}` })).status).toBe(401);
    expect(outageLines()).toEqual([
      expect.objectContaining({ msg: 'identity provider (jwks) unavailable' }),
      expect.objectContaining({
        level: 'info',
        msg: 'identity provider (jwks) available again',
        failures: 12,
      }),
    ]);
    expect(JSON.stringify(harness.logs)).not.toContain('s3cret');
    expect(outageLines().some((l) => 'stack' in l || JSON.stringify(l).includes('    at '))).toBe(false);
  });

  it('answers 503 when nothing listens at the JWKS address', async () => {
    const harness = await startWith(`${REFUSING_UPSTREAM}/jwks`);
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ org_id: 'globex' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setExpirationTime('5m')
      .sign(privateKey);
    const r = await call(harness, { authorization: `Bearer ${token}` });
    expect(r.status).toBe(503);
    expect(r.body.error?.code).toBe('identity_provider_unavailable');
  });
});

describe('JWT identity with require_exp: false', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('admits a token without exp only when the operator opted out, and still refuses an expired one', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const spki = await exportSPKI(publicKey);
    h = await startHarness({
      reply,
      config: (base) => ({
        ...base,
        identity: {
          sources: ['jwt'],
          jwt: { public_key: spki, algorithms: ['ES256'], tenant_claim: 'org_id', require_exp: false },
        },
      }),
    });
    const token = (exp?: number) => {
      const jwt = new SignJWT({ org_id: 'globex' }).setProtectedHeader({ alg: 'ES256' });
      return (exp === undefined ? jwt : jwt.setExpirationTime(exp)).sign(privateKey);
    };
    // No audience either: the operator is told at start that other apps' tokens pass too.
    expect(h.logs).toContainEqual(
      expect.objectContaining({ msg: 'config warning', path: 'identity.jwt.audience' }),
    );
    expect((await call(h, { authorization: `Bearer ${await token()}` })).status).toBe(200);
    const expired = await call(h, {
      authorization: `Bearer ${await token(Math.floor(Date.now() / 1000) - 60)}`,
    });
    expect(expired.status).toBe(401);
  });

  it('warns of a missing audience only where JWTs are a source', () => {
    const warned = (identity: Record<string, unknown>) =>
      configWarnings(
        parseConfig({
          upstream: { url: 'http://127.0.0.1:9' },
          identity,
          pricing: { m: { input: 1, output: 1 } },
          plans: { free: { models: { default: 'm' } } },
          tenants: [{ id: 'acme', plan: 'free' }],
        }),
      ).map((w) => w.path);
    expect(warned({ sources: ['jwt'], jwt: { public_key: PUBLIC_JWK } })).toEqual(['identity.jwt.audience']);
    expect(warned({ sources: ['jwt'], jwt: { public_key: PUBLIC_JWK, audience: 'lanekeeper' } })).toEqual([]);
    expect(warned({ sources: ['api_key'], jwt: { public_key: PUBLIC_JWK } })).toEqual([]);
  });

  it.each([
    ['credentials', 'https://user:pass@idp.test/jwks'],
    ['a user alone', 'https://user@idp.test/jwks'],
    ['a file URL', 'file:///etc/passwd'],
    ['a javascript URL', 'javascript:alert(1)'],
    ['no URL at all', 'idp.test/jwks'],
    ['a number', 443],
  ])('refuses a jwks_url with %s, naming its path', async (_name, value) => {
    const problems = await problemsOf(() =>
      parseConfig(smallestConfig({ identity: { sources: ['jwt'], jwt: { jwks_url: value } } })),
    );
    expect(problems.map((p) => p.path)).toContain('identity.jwt.jwks_url');
    expect(JSON.stringify(problems)).not.toContain('pass@');
  });

  it.each([
    ['a string', 'false'],
    ['a number', 0],
    ['null', null],
  ])('refuses require_exp that is %s, naming its path', async (_name, value) => {
    expect(
      await refusedPaths({
        identity: { sources: ['jwt'], jwt: { public_key: PUBLIC_JWK, require_exp: value } },
      }),
    ).toContain('identity.jwt.require_exp');
  });
});

describe('unauthenticated sources', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('ignores the tenant header unless trust_unauthenticated is set', async () => {
    h = await startHarness({ reply, config: (base) => ({ ...base, identity: { sources: ['header'] } }) });
    const r = await call(h, { 'x-tenant-id': 'globex' });
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe('tenant_required');
  });

  it('identifies by header, query or subdomain when trusted, and refuses unknown tenants with 403', async () => {
    h = await startHarness({
      reply,
      config: (base) => ({
        ...base,
        identity: {
          sources: ['header', 'query', 'subdomain'],
          trust_unauthenticated: true,
          subdomain: { base_domain: 'ai.example.com' },
        },
      }),
    });
    expect((await call(h, { 'x-tenant-id': 'globex' })).status).toBe(200);
    expect(h.lastReceived().headers['x-tenant-id']).toBe('globex');

    expect((await call(h, {}, '/v1/chat/completions?tenant=hooli&x=1')).status).toBe(200);
    expect(h.lastReceived().headers['x-tenant-id']).toBe('hooli');
    expect(h.lastReceived().query).toBe('x=1');

    expect((await call(h, { host: 'acme.ai.example.com' })).status).toBe(200);
    expect(h.lastReceived().headers['x-tenant-id']).toBe('acme');

    const unknown = await call(h, { 'x-tenant-id': 'initrode' });
    expect(unknown.status).toBe(403);
    expect(unknown.body.error?.code).toBe('tenant_unknown');

    const none = await call(h, { host: 'ai.example.com' });
    expect(none.status).toBe(400);
    expect(none.body.error?.code).toBe('tenant_required');
  });
});
