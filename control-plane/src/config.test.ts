import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { ControlPlaneConfigError } from './errors.js';

const valid = {
  DATABASE_URL: 'postgres://u@db:5432/lanekeeper',
  REDIS_URL: 'redis://redis:6379',
  LANEKEEPER_ADMIN_TOKEN: 'a'.repeat(32),
  LANEKEEPER_PROXY_TOKEN: 'p'.repeat(32),
};

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ControlPlaneConfigError);
    return (error as ControlPlaneConfigError).problems.map((p) => p.variable);
  }
  throw new Error('expected a ControlPlaneConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(valid);
    expect(config).toMatchObject({
      port: 8081,
      keyPrefix: 'lk:',
      usageStream: 'usage',
      vectorMode: 'collection',
      collectionTemplates: [{ name: 'documents', size: 1536, distance: 'Cosine' }],
      retainBillingOnErasure: false,
      requestTimeoutMs: 30_000,
    });
    expect(config.qdrant).toBeUndefined();
    expect(config.maxConnections).toBeUndefined();
  });

  it('names every missing variable at once', () => {
    // DATABASE_URL and REDIS_URL are optional: without them the one-machine mode runs.
    expect(problemsOf({})).toEqual(['LANEKEEPER_ADMIN_TOKEN', 'LANEKEEPER_PROXY_TOKEN']);
  });

  it.each([
    ['DATABASE_URL', 'mysql://x'],
    ['REDIS_URL', 'http://redis'],
    ['QDRANT_URL', 'not a url'],
    ['PORT', '70000'],
    ['LANEKEEPER_ADMIN_TOKEN', 'short'],
    ['LANEKEEPER_VECTOR_MODE', 'shared'],
    ['LANEKEEPER_COLLECTION_TEMPLATES', '[{"name":"docs","size":0,"distance":"Cosine"}]'],
    ['LANEKEEPER_COLLECTION_TEMPLATES', 'not json'],
    ['LANEKEEPER_REQUEST_TIMEOUT_MS', '0'],
    ['LANEKEEPER_REQUEST_TIMEOUT_MS', '999'],
    ['LANEKEEPER_REQUEST_TIMEOUT_MS', '600001'],
    ['LANEKEEPER_REQUEST_TIMEOUT_MS', '30s'],
    ['LANEKEEPER_REQUEST_TIMEOUT_MS', '1e400'],
    ['LANEKEEPER_MAX_CONNECTIONS', '0'],
    ['LANEKEEPER_MAX_CONNECTIONS', '-5'],
    ['LANEKEEPER_MAX_CONNECTIONS', '2.5'],
    ['LANEKEEPER_MAX_CONNECTIONS', 'many'],
  ])('refuses a bad %s (%s), naming it', (variable, value) => {
    expect(problemsOf({ ...valid, [variable]: value })).toContain(variable);
  });

  it('reads LANEKEEPER_CONSOLE_SECURE_COOKIE as auto (the default, also when empty), true or false', () => {
    expect(loadConfig(valid).consoleSecureCookie).toBe('auto');
    expect(loadConfig({ ...valid, LANEKEEPER_CONSOLE_SECURE_COOKIE: '' }).consoleSecureCookie).toBe('auto');
    expect(loadConfig({ ...valid, LANEKEEPER_CONSOLE_SECURE_COOKIE: 'auto' }).consoleSecureCookie).toBe(
      'auto',
    );
    expect(loadConfig({ ...valid, LANEKEEPER_CONSOLE_SECURE_COOKIE: 'true' }).consoleSecureCookie).toBe(
      'always',
    );
    expect(loadConfig({ ...valid, LANEKEEPER_CONSOLE_SECURE_COOKIE: 'false' }).consoleSecureCookie).toBe(
      'never',
    );
  });

  it.each([
    ['TRUE'],
    ['yes'],
    ['1'],
    ['on'],
    [' true'],
    ['true '],
    ['auto; Secure'],
    ['https'],
    ['true\r\nSet-Cookie: x=y'],
    ['x'.repeat(100_000)],
  ])('refuses a LANEKEEPER_CONSOLE_SECURE_COOKIE of %#, naming it', (value) => {
    expect(problemsOf({ ...valid, LANEKEEPER_CONSOLE_SECURE_COOKIE: value })).toEqual([
      'LANEKEEPER_CONSOLE_SECURE_COOKIE',
    ]);
  });

  it('reads LANEKEEPER_TRUSTED_PROXIES as addresses and CIDR ranges, and none when unset or empty', () => {
    expect(loadConfig(valid).trustedProxies).toBeUndefined();
    expect(loadConfig({ ...valid, LANEKEEPER_TRUSTED_PROXIES: '' }).trustedProxies).toBeUndefined();
    expect(
      loadConfig({ ...valid, LANEKEEPER_TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1,fd00::/8,::1' })
        .trustedProxies,
    ).toEqual(['10.0.0.0/8', '127.0.0.1', 'fd00::/8', '::1']);
  });

  it.each([
    ['*'],
    ['true'],
    ['loopback'],
    ['0.0.0.0/33'],
    ['::/129'],
    ['10.0.0.0/8,'],
    ['10.0.0.0/8,,10.1.0.0/16'],
    ['10.0.0.256'],
    ['10.0.0.0/-1'],
    ['example.com'],
    ['10.0.0.1\r\nX-Forwarded-For: 1.2.3.4'],
    [Array.from({ length: 65 }, (_, i) => `10.0.0.${i}`).join(',')],
    ['1'.repeat(100_000)],
  ])('refuses a LANEKEEPER_TRUSTED_PROXIES of %#, naming it', (value) => {
    expect(problemsOf({ ...valid, LANEKEEPER_TRUSTED_PROXIES: value })).toEqual([
      'LANEKEEPER_TRUSTED_PROXIES',
    ]);
  });

  it('accepts PORT=0 for tests', () => {
    expect(loadConfig({ ...valid, PORT: '0' }).port).toBe(0);
  });

  it('refuses the same token for admins and proxies', () => {
    expect(problemsOf({ ...valid, LANEKEEPER_PROXY_TOKEN: valid.LANEKEEPER_ADMIN_TOKEN })).toEqual([
      'LANEKEEPER_PROXY_TOKEN',
    ]);
    expect(problemsOf({ ...valid, LANEKEEPER_PROXY_TOKEN_PREVIOUS: valid.LANEKEEPER_ADMIN_TOKEN })).toEqual([
      'LANEKEEPER_PROXY_TOKEN_PREVIOUS',
    ]);
  });

  it('reads LANEKEEPER_PROXY_TOKEN_PREVIOUS, a token like the others, unset when empty', () => {
    expect(loadConfig({ ...valid, LANEKEEPER_PROXY_TOKEN_PREVIOUS: 'o'.repeat(32) }).previousProxyToken).toBe(
      'o'.repeat(32),
    );
    expect(loadConfig({ ...valid, LANEKEEPER_PROXY_TOKEN_PREVIOUS: '' }).previousProxyToken).toBeUndefined();
    expect(problemsOf({ ...valid, LANEKEEPER_PROXY_TOKEN_PREVIOUS: 'short' })).toEqual([
      'LANEKEEPER_PROXY_TOKEN_PREVIOUS',
    ]);
  });
});
