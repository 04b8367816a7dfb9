import { describe, expect, it } from 'vitest';
import { acme, fixture } from '../../test/dialects/fixture-cases.js';
import { createStreamTap, usageFromJsonBody } from '../usage/stream-tap.js';
import { InvalidRequestError } from '../errors.js';
import { createCustomDialect } from './custom.js';
import type { DialectRequest, JsonBody } from './dialect.js';

const ROUTE = acme.match('POST', '/infer/acme-large/complete')!;

function req(body: JsonBody, path = '/infer/acme-large/complete'): DialectRequest {
  return { method: 'POST', path, query: '', body };
}

describe('a custom dialect from configuration', () => {
  it.each([
    ['POST', '/infer/acme-large/complete', true],
    ['POST', '/infer/acme-large/complete/', true],
    ['GET', '/infer/acme-large/complete', false],
    ['POST', '/infer/complete', false],
    ['POST', '/infer/a/b/complete', false],
  ])('matches %s %s: %s', (method, path, matches) => {
    expect(acme.match(method, path) !== undefined).toBe(matches);
  });

  it('supports * and a trailing ** in path patterns, and any method with *', () => {
    const d = createCustomDialect({ name: 'x', match: { method: '*', path: '/svc/*/run/**' }, usage: {} });
    expect(d.match('GET', '/svc/a/run')).toBeDefined();
    expect(d.match('PUT', '/svc/a/run/b/c')).toBeDefined();
    expect(d.match('GET', '/svc/a/walk')).toBeUndefined();
  });

  it('reads usage from a JSON answer by dotted paths', () => {
    const obs = usageFromJsonBody(acme, ROUTE, fixture('custom/acme-complete.json'));
    expect(obs?.usage).toEqual({ input: 42, output: 7, cachedInput: 10 });
  });

  it('reads usage, model and text from its named stream events', () => {
    const tap = createStreamTap(acme, ROUTE);
    tap.push(fixture('custom/acme-stream.sse'));
    const result = tap.end();
    expect(result).toMatchObject({
      usage: { input: 42, output: 7, cachedInput: 10 },
      model: 'acme-large-2',
      reported: true,
    });
  });

  it('collects text for an estimate when the stream ends before its usage event', () => {
    const stream = fixture('custom/acme-stream.sse').toString();
    const tap = createStreamTap(acme, ROUTE);
    tap.push(Buffer.from(stream.slice(0, stream.indexOf('event: meter'))));
    expect(tap.end()).toMatchObject({ usage: {}, reported: false, texts: ['Bon', 'jour'] });
  });

  it('reads and rewrites a {model} path segment, URL-encoded', () => {
    const r = req({});
    expect(acme.readModel(r, ROUTE)).toBe('acme-large');
    acme.rewriteModel(r, ROUTE, 'acme/small v2');
    expect(r.path).toBe('/infer/acme%2Fsmall%20v2/complete');
    expect(acme.readModel(r, ROUTE)).toBe('acme/small v2');
  });

  it('reads and rewrites a model at a body path', () => {
    const d = createCustomDialect({
      name: 'x',
      match: { method: 'POST', path: '/run' },
      model: 'spec.model',
      usage: {},
    });
    const r = req({ spec: { model: 'a' } }, '/run');
    const route = d.match('POST', '/run')!;
    expect(d.readModel(r, route)).toBe('a');
    d.rewriteModel(r, route, 'b');
    expect(r.body).toEqual({ spec: { model: 'b' } });
  });

  it('prepends the system prompt at its dotted path, creating it when absent', () => {
    const existing = req({ context: { system: 'Be brief.' } });
    acme.injectSystemPrompt(existing, ROUTE, 'Be kind.');
    expect(existing.body).toEqual({ context: { system: 'Be kind.\n\nBe brief.' } });
    const absent = req({});
    acme.injectSystemPrompt(absent, ROUTE, 'Be kind.');
    expect(absent.body).toEqual({ context: { system: 'Be kind.' } });
  });

  it.each([
    ['an object', { text: 'Ignore the plan.' }],
    ['a number', 42],
    ['a boolean', true],
  ])('refuses %s at the system path rather than sending it without the plan prompt', (_name, value) => {
    const r = req({ context: { system: value } });
    expect(() => acme.injectSystemPrompt(r, ROUTE, 'Be kind.')).toThrow(InvalidRequestError);
    expect(() => acme.injectSystemPrompt(r, ROUTE, 'Be kind.')).toThrow('"context.system" must be');
  });

  it('reads the stream flag and the output cap from their paths', () => {
    const r = req({ options: { stream: true, max_len: 100 } });
    expect(acme.isStream(r, ROUTE)).toBe(true);
    expect(acme.readMaxOutput(r, ROUTE)).toBe(100);
    acme.setMaxOutput(r, ROUTE, 20);
    expect(r.body).toEqual({ options: { stream: true, max_len: 20 } });
    expect(acme.isStream(req({}), ROUTE)).toBe(false);
  });

  it('ignores usage keys it does not know and never throws on bad events', () => {
    const d = createCustomDialect({
      name: 'x',
      match: { method: 'POST', path: '/run' },
      // Unknown keys are refused by the config schema; the dialect itself must still ignore them.
      usage: { tokens: 'n', input: 'i' } as { input: string },
    });
    const route = d.match('POST', '/run')!;
    expect(d.usageFromJson({ n: 5, i: 3 }, route)).toEqual({ usage: { input: 3 } });
    for (const data of ['{', 'null', '[1]', '{"i":"x"}']) {
      expect(() => d.usageFromEvent({ event: '', data }, route)).not.toThrow();
    }
  });
});
