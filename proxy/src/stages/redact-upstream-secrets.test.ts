import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import type { ResponseHead } from '../stage.js';
import { splitAt } from '../../test/helpers/split-at.js';
import { createRedactUpstreamSecretsStage, REDACTED } from './redact-upstream-secrets.js';

const KEY = 'AIzaSyD-operator-0123456789';
const TOKEN = 'sk-operator-abcdef012345';
const config = parseConfig({
  upstreams: {
    google: {
      url: 'https://gemini.example/',
      dialect: 'gemini',
      models: ['gemini-*'],
      headers: { 'x-goog-api-key': KEY },
    },
    openai: {
      url: 'https://openai.example',
      headers: { Authorization: `Bearer ${TOKEN}`, 'OpenAI-Beta': 'assistants=v2' },
      models: ['*'],
    },
  },
});

/** Passes `parts` through the stage as one answer of `status`; returns the bytes out and the head. */
function through(parts: (string | Buffer)[], status = 403): { text: string; head: ResponseHead } {
  const stage = createRedactUpstreamSecretsStage();
  const ctx = { runtime: { config } } as unknown as RequestContext;
  const head: ResponseHead = { status, headers: { 'content-length': '99' } };
  stage.onResponseHeaders!(ctx, head);
  const out = parts.map((part) =>
    stage.onResponseChunk!(ctx, typeof part === 'string' ? Buffer.from(part, 'latin1') : part, false),
  );
  out.push(stage.onResponseChunk!(ctx, Buffer.alloc(0), true));
  return { text: Buffer.concat(out).toString('latin1'), head };
}

describe('redact-upstream-secrets', () => {
  it('never lets a configured secret through, however an error answer is cut', () => {
    const secret = fc.constantFrom(KEY, TOKEN, `Bearer ${TOKEN}`);
    // Any bytes (latin1: UTF-8 answers are bytes here) around secrets, cut anywhere.
    const filler = fc.string({
      unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
      maxLength: 40,
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(filler, secret), { maxLength: 5 }),
        filler,
        fc.array(fc.nat(), { maxLength: 12 }),
        (runs, tail, cuts) => {
          const body = runs.map(([before, s]) => before + s).join('') + tail;
          const bytes = Buffer.from(body, 'latin1');
          const { text } = through(
            splitAt(
              bytes,
              cuts.map((c) => c % (bytes.length + 1)),
            ),
          );
          for (const s of [KEY, TOKEN]) expect(text).not.toContain(s);
          expect(text).toBe(through([body]).text);
        },
      ),
    );
  });

  it('drops the upstream length only when it may change the body', () => {
    expect(through(['x'], 403).head.headers['content-length']).toBeUndefined();
    expect(through(['x'], 200).head.headers['content-length']).toBe('99');
  });

  it('passes a success answer untouched, secret and all (it is not scanned)', () => {
    expect(through([`a${KEY}b`], 200).text).toBe(`a${KEY}b`);
  });

  it('leaves header values that are no credential, and short values', () => {
    expect(through(['assistants=v2 Bearer']).text).toBe('assistants=v2 Bearer');
    expect(through([`{"m":"${KEY}"}`]).text).toBe(`{"m":"${REDACTED}"}`);
  });
});
