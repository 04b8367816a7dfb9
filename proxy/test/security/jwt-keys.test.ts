/**
 * The keys JWTs are verified with, as an operator gets them wrong and as an outsider leans
 * on a failing identity provider:
 * - a `public_key` that cannot verify what `algorithms` lists is refused when the config is
 *   read, at start and on a live reload, where it used to end the process on the first JWT;
 * - a JWKS endpoint that fails is fetched at most once per cooldown, whatever the tokens say,
 *   its keys outlive their age while it is down, and its answer is read only up to 1 MiB;
 * - a token without `kid` is checked against each key of its algorithm (a rotation).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { errors, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { pino } from 'pino';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { createJwtVerifier } from '../../src/identity/jwt.js';
import { JwksUnavailableError } from '../../src/identity/remote-key-set.js';
import { startProxy, type RunningProxy } from '../../src/main.js';
import { refusedPaths } from '../helpers/config-problems.js';
import { chatCompletion, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { baseConfig } from '../helpers/harness.js';

function pem(type: 'rsa' | 'ec' | 'ed25519', namedCurve?: string): string {
  const { publicKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: namedCurve! })
        : generateKeyPairSync('ed25519');
  return (publicKey.export({ type: 'spki', format: 'pem' }) as string).trim();
}

const RSA = pem('rsa');
const P256 = pem('ec', 'prime256v1');
const P384 = pem('ec', 'secp384r1');
const ED25519 = pem('ed25519');

const jwtConfig = (jwt: Record<string, unknown>) => ({ identity: { sources: ['jwt'], jwt } });

describe('identity.jwt.public_key is checked when the config is read', () => {
  it.each([
    ['not a key', { public_key: 'x' }],
    ['a PEM of garbage', { public_key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }],
    ['an EC key with an RSA algorithm', { public_key: P256, algorithms: ['RS256'] }],
    ['a P-384 key with ES256', { public_key: P384, algorithms: ['ES256'] }],
    ['an RSA key with an EC algorithm', { public_key: RSA, algorithms: ['ES256'] }],
    ['an RSA key with HS256 (a public key as a shared secret)', { public_key: RSA, algorithms: ['HS256'] }],
    ['an RSA key with none', { public_key: RSA, algorithms: ['none'] }],
    ['an RSA key with one good and one unknown algorithm', { public_key: RSA, algorithms: ['RS256', 'XX1'] }],
    ['an Ed25519 key with ES256', { public_key: ED25519, algorithms: ['ES256'] }],
    ['a shared secret as a JWK', { public_key: '{"kty":"oct","k":"c2VjcmV0LXNlY3JldA"}' }],
    [
      'a private JWK',
      { public_key: JSON.stringify(generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })) },
    ],
    ['JSON that is no JWK', { public_key: '{"keys": 3}' }],
    ['an empty JWKS', { public_key: '{"keys": []}' }],
    ['broken JSON', { public_key: '{"kty": "EC"' }],
    ['a JWK with a bad point', { public_key: '{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}' }],
  ])('refuses %s, naming the key', async (_name, jwt) => {
    expect(await refusedPaths(jwtConfig(jwt))).toContain('identity.jwt.public_key');
  });

  it('refuses an empty algorithms list', async () => {
    expect(await refusedPaths(jwtConfig({ public_key: RSA, algorithms: [] }))).toContain(
      'identity.jwt.algorithms',
    );
  });

  it.each([
    ['an RSA key alone', { public_key: RSA }],
    ['an RSA key with RS and PS algorithms', { public_key: RSA, algorithms: ['RS256', 'PS512'] }],
    ['a P-256 key alone', { public_key: P256 }],
    ['an Ed25519 key alone', { public_key: ED25519 }],
  ])('accepts %s', async (_name, jwt) => {
    expect(await refusedPaths(jwtConfig(jwt)).catch((error: Error) => error.message)).toBe(
      'the config was accepted',
    );
  });
});

describe('a PEM public key verifies every algorithm it is given', () => {
  it('a P-256 key with no algorithms verifies ES256 (the first JWT ended the process before)', async () => {
    const pair = await generateKeyPair('ES256');
    const verifier = createJwtVerifier({
      ...defaults,
      public_key: await exportSPKI(pair.publicKey),
    });
    expect(await verifier.tenantOf(await sign(pair.privateKey, 'ES256'))).toBe('globex');
  });

  it('an RSA key with RS256 and PS256 verifies both, and nothing else', async () => {
    // Node's KeyObject signs with either padding; a WebCrypto key is bound to one.
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const verifier = createJwtVerifier({
      ...defaults,
      public_key: pair.publicKey.export({ type: 'spki', format: 'pem' }) as string,
      algorithms: ['RS256', 'PS256'],
    });
    expect(await verifier.tenantOf(await sign(pair.privateKey, 'RS256'))).toBe('globex');
    expect(await verifier.tenantOf(await sign(pair.privateKey, 'PS256'))).toBe('globex');
    await expect(verifier.tenantOf(await sign(pair.privateKey, 'RS512'))).rejects.toThrow(
      errors.JOSEAlgNotAllowed,
    );
  });
});

const defaults = {
  tenant_claim: 'org_id',
  clock_tolerance_s: 5,
  require_exp: true,
  jwks_cooldown_ms: 30_000,
};

function sign(key: Parameters<SignJWT['sign']>[0], alg: string, kid?: string): Promise<string> {
  return new SignJWT({ org_id: 'globex' })
    .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
    .setExpirationTime('5m')
    .sign(key);
}

describe('a live reload with a key that cannot verify', () => {
  let upstream: FakeUpstream | undefined;
  let proxy: RunningProxy | undefined;
  afterEach(async () => {
    await proxy?.close(1000);
    await upstream?.close();
    proxy = upstream = undefined;
  });

  it('is rejected; the proxy keeps running on the previous key', async () => {
    const pair = await generateKeyPair('ES256');
    upstream = await startFakeUpstream(() => ({
      kind: 'json',
      body: chatCompletion('m', 'ok', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
    }));
    const dir = await mkdtemp(join(tmpdir(), 'lanekeeper-jwt-'));
    const path = join(dir, 'lanekeeper.yaml');
    const write = async (jwt: Record<string, unknown>) => {
      const base = baseConfig(upstream!.url) as Record<string, unknown> & { identity?: object };
      await writeFile(`${path}.tmp`, stringify({ ...base, identity: { sources: ['jwt'], jwt } }));
      await rename(`${path}.tmp`, path);
    };
    const good = { public_key: await exportSPKI(pair.publicKey), tenant_claim: 'org_id', audience: 'a' };
    await write(good);
    const logs: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
        done();
      },
    });
    proxy = await startProxy({ configPath: path, logger: pino(sink) });
    const token = await new SignJWT({ org_id: 'globex', aud: 'a' })
      .setProtectedHeader({ alg: 'ES256' })
      .setExpirationTime('5m')
      .sign(pair.privateKey);
    const chat = async () => {
      const res = await request(`${proxy!.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
      });
      await res.body.dump();
      return res.statusCode;
    };
    expect(await chat()).toBe(200);

    await write({ ...good, algorithms: ['RS256'] });
    for (
      let i = 0;
      i < 300 && !logs.some((l) => l.msg === 'config edit rejected; keeping the previous config');
      i++
    )
      await new Promise((r) => setTimeout(r, 10));
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'config edit rejected; keeping the previous config',
        err: expect.stringContaining('identity.jwt.public_key'),
      }),
    );
    expect(await chat()).toBe(200);
  });
});

/** A JWKS endpoint whose answers the test sets, counting the fetches. */
async function idp(): Promise<{
  url: URL;
  fetches: () => number;
  answer: (status: number, body?: unknown) => void;
  close: () => Promise<void>;
}> {
  let fetches = 0;
  let status = 200;
  let body: unknown = { keys: [] };
  const server: Server = createServer((_req, res) => {
    fetches++;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', location: '/elsewhere' }).end(text);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`),
    fetches: () => fetches,
    answer(s, b) {
      status = s;
      if (b !== undefined) body = b;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function publishedKey(kid?: string): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const pair = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(pair.publicKey)), alg: 'RS256', ...(kid ? { kid } : {}) };
  return { privateKey: pair.privateKey, jwk };
}

describe('a JWKS endpoint that fails', () => {
  let endpoint: Awaited<ReturnType<typeof idp>> | undefined;
  afterEach(async () => {
    await endpoint?.close();
    endpoint = undefined;
  });

  function verifierFor(url: URL, now: () => number) {
    return createJwtVerifier({ ...defaults, jwks_url: url.href }, { now });
  }

  it('is fetched once per cooldown, however many unknown key ids arrive', async () => {
    endpoint = await idp();
    const good = await publishedKey('k1');
    endpoint.answer(200, { keys: [good.jwk] });
    let now = 1_000_000;
    const verifier = verifierFor(endpoint.url, () => now);
    expect(await verifier.tenantOf(await sign(good.privateKey, 'RS256', 'k1'))).toBe('globex');
    expect(endpoint.fetches()).toBe(1);

    endpoint.answer(429);
    const stranger = await publishedKey();
    now += 31_000;
    for (let i = 0; i < 40; i++) {
      const error = await verifier
        .tenantOf(await sign(stranger.privateKey, 'RS256', `kid-${i}`))
        .catch((e) => e);
      expect(error).toBeInstanceOf(JwksUnavailableError);
    }
    // The first stranger fetched (the cooldown had passed); the 39 after it did not.
    expect(endpoint.fetches()).toBe(2);
    now += 31_000;
    await verifier.tenantOf(await sign(stranger.privateKey, 'RS256', 'kid-x')).catch(() => undefined);
    expect(endpoint.fetches()).toBe(3);
  });

  it('is fetched once per cooldown before any key was ever had', async () => {
    endpoint = await idp();
    endpoint.answer(500);
    const now = 1_000_000;
    const verifier = verifierFor(endpoint.url, () => now);
    for (let i = 0; i < 50; i++)
      await expect(verifier.tenantOf('eyJhbGciOiJSUzI1NiJ9.e30.c2ln')).rejects.toThrow(JwksUnavailableError);
    expect(endpoint.fetches()).toBe(1);
  });

  it('keeps the keys it had past their age while it fails, for a day', async () => {
    endpoint = await idp();
    const good = await publishedKey('k1');
    endpoint.answer(200, { keys: [good.jwk] });
    let now = 1_000_000;
    const verifier = verifierFor(endpoint.url, () => now);
    const token = await sign(good.privateKey, 'RS256', 'k1');
    expect(await verifier.tenantOf(token)).toBe('globex');

    endpoint.answer(503);
    now += 11 * 60_000;
    for (let i = 0; i < 10; i++) expect(await verifier.tenantOf(token)).toBe('globex');
    // Refreshing was tried (the keys were past their age), once in the cooldown.
    expect(endpoint.fetches()).toBe(2);
    now += 24 * 3_600_000;
    await expect(verifier.tenantOf(token)).rejects.toThrow(JwksUnavailableError);
  });

  it.each([
    ['larger than 1 MiB', 200, { keys: [], padding: 'x'.repeat(2 << 20) }],
    ['a redirect', 302, { keys: [] }],
    ['not JSON', 200, 'not json'],
    ['JSON with no keys', 200, { keys: 'none' }],
  ])('counts an answer %s as the endpoint failing', async (_name, status, body) => {
    endpoint = await idp();
    endpoint.answer(status, body);
    const verifier = verifierFor(endpoint.url, () => 1_000_000);
    const error = await verifier
      .tenantOf(await sign((await publishedKey()).privateKey, 'RS256', 'k1'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JwksUnavailableError);
    expect(endpoint.fetches()).toBe(1);
  });
});

describe('a token without kid', () => {
  let endpoint: Awaited<ReturnType<typeof idp>> | undefined;
  afterEach(async () => {
    await endpoint?.close();
    endpoint = undefined;
  });

  it('is checked against each key of its algorithm while the IdP rotates', async () => {
    endpoint = await idp();
    const old = await publishedKey();
    const next = await publishedKey();
    endpoint.answer(200, { keys: [old.jwk, next.jwk] });
    const verifier = createJwtVerifier({ ...defaults, jwks_url: endpoint.url.href });
    expect(await verifier.tenantOf(await sign(old.privateKey, 'RS256'))).toBe('globex');
    expect(await verifier.tenantOf(await sign(next.privateKey, 'RS256'))).toBe('globex');
    const stranger = await publishedKey();
    await expect(verifier.tenantOf(await sign(stranger.privateKey, 'RS256'))).rejects.toThrow(
      errors.JWSSignatureVerificationFailed,
    );
  });
});
