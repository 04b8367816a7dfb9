/**
 * Header names and values the config gives the proxy to send are checked when it is read.
 * Before, a key with its secret file's trailing newline passed check-config and every request
 * then failed as a 502 "upstream could not be reached (UND_ERR_INVALID_ARG)".
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { parseConfig } from '../../src/config/schema.js';
import { problemsOf, smallestConfig } from '../helpers/config-problems.js';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { KEYS, startHarness } from '../helpers/harness.js';

const SECRET = 'sk-very-secret-upstream-key';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lanekeeper-header-fields-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refused(sections: Record<string, unknown>) {
  return problemsOf(() => parseConfig(smallestConfig(sections)));
}

describe('header values the proxy sends', () => {
  const upstream = (value: string) => ({
    upstream: { url: 'http://127.0.0.1:9', headers: { authorization: value } },
  });

  it.each([
    ['a trailing newline', `Bearer ${SECRET}\n`, 'line break'],
    ['a CRLF and a smuggled header', `Bearer ${SECRET}\r\nx-injected: 1`, 'line break'],
    ['a NUL', `Bearer ${SECRET}\u0000`, 'control character'],
    ['an escape', `Bearer \u001b[31m${SECRET}`, 'control character'],
    ['a character past U+00FF', `Bearer ${SECRET}\u20ac`, 'past U+00FF'],
    ['DEL', `Bearer ${SECRET}\u007f`, 'control character'],
  ])('refuses an upstream header value with %s, without echoing it', async (_what, value, says) => {
    const problems = await refused(upstream(value));
    expect(problems.map((p) => p.path)).toEqual(['upstream.headers.authorization']);
    expect(problems[0]!.message).toContain(says);
    expect(JSON.stringify(problems)).not.toContain(SECRET);
  });

  it.each([
    ['a Latin-1 letter', 'Bearer clé'],
    ['a tab inside', 'a\tb'],
    ['an empty key behind a default', 'Bearer '],
  ])('takes a value with %s, as HTTP does', (_what, value) => {
    expect(() => parseConfig(smallestConfig(upstream(value)))).not.toThrow();
  });

  it('refuses the control plane token and the Qdrant key with a line break', async () => {
    const problems = await refused({
      control_plane: { url: 'http://127.0.0.1:9', token: `${SECRET}\n` },
      vector: { url: 'http://127.0.0.1:9', api_key: `${SECRET}\r\n` },
    });
    expect(problems.map((p) => p.path).sort()).toEqual(['control_plane.token', 'vector.api_key']);
    expect(JSON.stringify(problems)).not.toContain(SECRET);
  });

  it('refuses a newline that came in through ${VAR}, naming the header', async () => {
    const file = join(dir, 'env.yaml');
    await writeFile(
      file,
      [
        'upstream:',
        '  url: http://127.0.0.1:9',
        '  headers: { authorization: "Bearer ${UPSTREAM_KEY}" }',
        'plans: { free: { models: { default: m } } }',
        'tenants: [{ id: acme, plan: free }]',
      ].join('\n'),
    );
    const problems = await problemsOf(() => loadConfigFile(file, { UPSTREAM_KEY: `${SECRET}\n` }));
    expect(problems.map((p) => p.path)).toEqual(['upstream.headers.authorization']);
    expect(problems[0]!.message).toContain('trailing newline');
  });
});

describe('header names the proxy sends', () => {
  it.each([
    ['a space', 'x api key'],
    ['a colon', 'x-key:'],
    ['a newline', 'x-key\nx-other'],
    ['nothing', ''],
    ['a non-ASCII letter', 'x-clé'],
  ])('refuses an upstream header name with %s', async (_what, name) => {
    const problems = await refused({ upstream: { url: 'http://127.0.0.1:9', headers: { [name]: 'v' } } });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path.startsWith('upstream.headers')).toBe(true);
    expect(problems[0]!.message).toContain('not a header name');
  });

  it.each(['Host', 'content-length', 'Transfer-Encoding', 'connection', 'upgrade', 'keep-alive', 'expect'])(
    'refuses %s, which the proxy sets per request',
    async (name) => {
      const problems = await refused({ upstream: { url: 'http://127.0.0.1:9', headers: { [name]: 'v' } } });
      expect(problems.map((p) => p.message).join()).toContain('set by the proxy');
    },
  );

  it('refuses one name given twice in two spellings', async () => {
    const problems = await refused({
      upstream: {
        url: 'http://127.0.0.1:9',
        headers: { Authorization: 'Bearer a', authorization: 'Bearer b' },
      },
    });
    expect(problems.map((p) => p.message)).toEqual(['"authorization" is given twice']);
  });

  it('refuses bad names for the tenant header and the injected headers', async () => {
    const problems = await refused({
      identity: {
        sources: ['header'],
        header: 'x tenant',
        trust_unauthenticated: true,
        inject_headers: { tenant: 'x-tenant\r\nx-evil', plan: 'content-length' },
      },
    });
    expect(problems.map((p) => p.path).sort()).toEqual([
      'identity.header',
      'identity.inject_headers.plan',
      'identity.inject_headers.tenant',
    ]);
  });
});

describe('an accepted value reaches the upstream', () => {
  it('sends a configured header with a Latin-1 value and a tab as written', async () => {
    const h = await startHarness({
      reply: {
        kind: 'json',
        body: chatCompletion('small-model', 'hi', { prompt_tokens: 1, completion_tokens: 1 }),
      },
      config: (base) => ({
        ...base,
        upstream: {
          ...(base.upstream as object),
          headers: { authorization: 'Bearer sk', 'X-Org': 'Zürich\tHQ' },
        },
      }),
    });
    try {
      const client = new OpenAI({ apiKey: KEYS.free, baseURL: `${h.proxy.url}/v1`, maxRetries: 0 });
      const answer = await client.chat.completions.create({
        model: 'default',
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(answer.choices[0]!.message.content).toBe('hi');
      // Node reads header bytes as Latin-1: the value arrives as the config wrote it.
      expect(h.lastReceived().headers['x-org']).toBe('Zürich\tHQ');
      expect(h.lastReceived().headers.authorization).toBe('Bearer sk');
    } finally {
      await h.close();
    }
  });
});
