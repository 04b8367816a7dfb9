/**
 * Upstreams and clients can send anything. Every dialect method must survive arbitrary JSON
 * and arbitrary text without throwing: metering skips what it cannot read, and request
 * rewriting leaves a body it does not understand for the upstream to refuse. The
 * exceptions are an output cap or choice count that is not a positive integer, and a prompt
 * field the plan's system prompt cannot go into: they refuse the request with
 * InvalidRequestError (400), never any other error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Dialect, DialectRequest, DialectRoute, JsonBody } from '../../src/dialects/dialect.js';
import { dialects } from '../../src/dialects/index.js';
import { InvalidRequestError } from '../../src/errors.js';
import { acme } from './fixture-cases.js';

const PATHS: Record<string, string[]> = {
  openai: ['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/embeddings', '/v1/models'],
  anthropic: ['/v1/messages', '/v1/messages/count_tokens'],
  gemini: [
    '/v1beta/models/gemini-2.5-pro:generateContent',
    '/v1beta/models/gemini-2.5-pro:streamGenerateContent',
    '/v1beta/models/e:embedContent',
  ],
  ollama: ['/api/chat', '/api/generate', '/api/embed', '/api/tags'],
  acme: ['/infer/m/complete'],
};

const cases: [Dialect, string, DialectRoute][] = [...dialects, acme].flatMap((d) =>
  (PATHS[d.name] ?? []).map((path): [Dialect, string, DialectRoute] => [d, path, d.match('POST', path)!]),
);

/** Arbitrary JSON objects, biased towards the field names dialects look at. */
const key = fc.constantFrom(
  'model',
  'messages',
  'content',
  'system',
  'prompt',
  'instructions',
  'input',
  'stream',
  'stream_options',
  'usage',
  'choices',
  'delta',
  'error',
  'type',
  'response',
  'message',
  'usageMetadata',
  'candidates',
  'parts',
  'contents',
  'systemInstruction',
  'generationConfig',
  'options',
  'max_tokens',
  'max_completion_tokens',
  'max_output_tokens',
  'maxOutputTokens',
  'num_predict',
  'n',
  'best_of',
  'candidateCount',
  'done',
  'eval_count',
  'meter',
  'context',
  'images',
  'prompt_tokens',
  'input_tokens',
  'tools',
  'x',
);
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small' },
    fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null)),
    fc.array(tie('tree'), { maxLength: 4 }),
    fc.dictionary(key, tie('tree'), { maxKeys: 5 }),
  ),
}));
const body = fc.dictionary(key, tree, { maxKeys: 6 });

/** Runs a read that may refuse a hostile cap or choice count, and only that way. */
function readsOrRefuses(read: () => unknown): void {
  try {
    read();
  } catch (error) {
    if (!(error instanceof InvalidRequestError)) throw error;
  }
}

describe.each(cases)('the %s dialect on %s', (dialect, path, route) => {
  it('never throws on arbitrary response data or events', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          tree.map((v) => JSON.stringify(v) ?? ''),
          fc.string(),
        ),
        fc.string(),
        (data, event) => {
          expect(() => {
            dialect.usageHint({ event, data });
            dialect.usageFromEvent({ event, data }, route);
            dialect.textFromEvent({ event, data }, route);
            dialect.hideInjectedUsage?.({ event, data });
            dialect.hideInjectedUsageInBlock?.(Buffer.from(`data: ${data}\n\n`));
          }).not.toThrow();
        },
      ),
      { numRuns: 150 },
    );
    fc.assert(
      fc.property(tree, (value) => {
        expect(() => dialect.usageFromJson(value, route)).not.toThrow();
      }),
      { numRuns: 150 },
    );
  });

  it('never throws on arbitrary request bodies', () => {
    fc.assert(
      fc.property(body, fc.string(), fc.nat(), (b, text, n) => {
        const req: DialectRequest = { method: 'POST', path, query: '', body: b as JsonBody };
        expect(() => {
          dialect.readModel(req, route);
          dialect.isStream(req, route);
          dialect.hasImageInput(req, route);
          readsOrRefuses(() => dialect.readMaxOutput(req, route));
          readsOrRefuses(() => dialect.readChoices?.(req, route));
          const estimate = dialect.estimatePromptTokens(req, route);
          if (!Number.isInteger(estimate) || estimate < 0) throw new Error(`bad estimate ${estimate}`);
          // A prompt field of a type the plan's prompt cannot go into is refused, like a bad cap.
          readsOrRefuses(() => dialect.injectSystemPrompt(req, route, text));
          dialect.setMaxOutput(req, route, n);
          dialect.rewriteModel(req, route, text);
          if (dialect.requestStreamUsage?.(req, route)) dialect.withoutStreamUsage?.(req, route);
          dialect.cutoffEvent?.(route, text);
        }).not.toThrow();
      }),
      { numRuns: 150 },
    );
  });
});
