// One framing pass per chunk: meter-usage cuts a metered stream into event blocks and
// hide-injected-usage, just above it, reads the same blocks; the client still gets exactly
// what it would have got from a framer of its own.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/context.js';
import { createHideInjectedUsageStage } from '../../src/stages/hide-injected-usage.js';
import { createMeterUsageStage } from '../../src/stages/meter-usage.js';
import type { ResponseHead } from '../../src/stage.js';
import { createEventFramer } from '../../src/usage/event-framer.js';
import { createStreamTap } from '../../src/usage/stream-tap.js';
import { createSseParser } from '../../src/usage/sse.js';
import { STREAM_CASES, routeOf } from '../dialects/fixture-cases.js';
import { splitAt } from '../helpers/split-at.js';
import { openai } from '../../src/dialects/openai.js';

const CHAT = openai.match('POST', '/v1/chat/completions')!;

function openAiChunk(i: number): string {
  return `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"w${i} "}}],"usage":null}\n\n`;
}

const STREAM = Buffer.from(
  [
    ...Array.from({ length: 6 }, (_, i) => openAiChunk(i)),
    'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":6,"total_tokens":13}}\n\n',
    'data: [DONE]\n\n',
  ].join(''),
);

function context(): RequestContext {
  return {
    id: 'r1',
    tenant: { id: 'acme' },
    dialect: openai,
    route: CHAT,
    stream: true,
    usageInjected: true,
    usage: {},
    runtime: { config: { max_json_response_bytes: 1 << 20 } },
  } as unknown as RequestContext;
}

/** Runs the meter and the hider over `chunks` as the exchange does (bottom to top), counting framing passes. */
function run(chunks: Buffer[]): { out: string; framings: number } {
  const noop = () => undefined;
  const meter = createMeterUsageStage({
    store: { record: () => Promise.resolve() } as never,
    logger: { warn: noop, error: noop } as never,
    metrics: {} as never,
  });
  const hide = createHideInjectedUsageStage({ quirks: { rejectsStreamOptions: () => false } as never });
  const ctx = context();
  const head: ResponseHead = { status: 200, headers: { 'content-type': 'text/event-stream' } };
  meter.onResponseHeaders?.(ctx, head);
  hide.onResponseHeaders?.(ctx, head);
  const framer = ctx.streamFrames?.framer;
  expect(framer).toBeDefined();
  let framings = 0;
  const push = framer!.push.bind(framer);
  framer!.push = (chunk: Buffer) => {
    framings++;
    return push(chunk);
  };
  let out = '';
  const deliver = (chunk: Buffer, end: boolean) => {
    const metered = meter.onResponseChunk!(ctx, chunk, end);
    out += hide.onResponseChunk!(ctx, metered, end).toString('utf8');
  };
  for (const chunk of chunks) deliver(chunk, false);
  deliver(Buffer.alloc(0), true);
  return { out, framings };
}

/** What the hider alone, with a framer of its own, sends for the same stream. */
function alone(chunks: Buffer[]): string {
  const hide = createHideInjectedUsageStage({ quirks: { rejectsStreamOptions: () => false } as never });
  const ctx = context();
  hide.onResponseHeaders?.(ctx, { status: 200, headers: {} });
  let out = '';
  for (const chunk of chunks) out += hide.onResponseChunk!(ctx, chunk, false).toString('utf8');
  out += hide.onResponseChunk!(ctx, Buffer.alloc(0), true).toString('utf8');
  return out;
}

function split(bytes: Buffer, cuts: number[]): Buffer[] {
  return splitAt(
    bytes,
    cuts.map((c) => c % (bytes.length + 1)),
  ).filter((c) => c.length > 0);
}

describe('one framing pass shared by the meter and the usage hider', () => {
  it('frames each chunk once, and the client gets what a framer of its own would give, at any split', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
        const chunks = split(STREAM, cuts);
        const { out, framings } = run(chunks);
        expect(framings).toBe(chunks.length);
        expect(out).toBe(alone(chunks));
        // The usage the proxy asked for is gone, the content is all there.
        expect(out).not.toContain('"usage"');
        for (let i = 0; i < 6; i++) expect(out).toContain(`w${i} `);
      }),
      { numRuns: 200 },
    );
  });
});

describe('the framer and the tap', () => {
  it('reads an event from a block as the SSE parser does, the one-data-line fast path included', () => {
    const field = fc.constantFrom(
      'data: ',
      'data:',
      'event: message_delta\ndata: ',
      ': ping\ndata: ',
      'id: 7\ndata: ',
    );
    const text = fc.string({ unit: fc.constantFrom('a', '"', '{', '\r', '\n', 'é', '🚀', ' ', 'data: ') });
    const ending = fc.constantFrom('\n\n', '\r\n\r\n', '\r\r', '\n');
    fc.assert(
      fc.property(field, text, ending, (f, t, e) => {
        const block = Buffer.from(`${f}${t}${e}`);
        const parser = createSseParser();
        const expected = [...parser.push(block), ...parser.end()][0];
        expect(createEventFramer('sse').eventOf(block)).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('parses only the first event and the one that carries usage', () => {
    const tap = createStreamTap(openai, routeOf(STREAM_CASES[0]!));
    tap.push(STREAM);
    const result = tap.end();
    expect(result).toMatchObject({ events: 8, parsed: 2, usage: { input: 7, output: 6 }, model: 'm' });
  });

  it('holds at most the cap of an event that never ends, and forwards it whole', () => {
    const framer = createEventFramer('sse', 1024);
    const endless = Buffer.from(`data: ${'x'.repeat(600)}`);
    expect(framer.push(endless)).toEqual([]);
    const flushed = framer.push(endless);
    expect(flushed).toHaveLength(1);
    expect(flushed[0]!.length).toBe(2 * endless.length);
    // The event's end still frames: what follows the flushed bytes is its own block.
    const rest = framer.push(Buffer.from('\n\ndata: {}\n\n'));
    expect(rest.map((b) => b.toString())).toEqual(['\n\n', 'data: {}\n\n']);
  });
});
