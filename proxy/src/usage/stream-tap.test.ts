import { describe, expect, it } from 'vitest';
import { fixture } from '../../test/dialects/fixture-cases.js';
import type { Dialect } from '../dialects/dialect.js';
import { ollama } from '../dialects/ollama.js';
import { openai } from '../dialects/openai.js';
import { createStreamTap, usageFromJsonBody } from './stream-tap.js';

const CHAT = openai.match('POST', '/v1/chat/completions')!;

function chunk(content: string): string {
  return `data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}}}],"usage":null}\n\n`;
}

describe('createStreamTap', () => {
  it('parses only the first event and the events the usage hint selects', () => {
    const tap = createStreamTap(openai, CHAT);
    tap.push(fixture('openai/chat-stream-usage.sse'));
    const result = tap.end();
    expect(result.events).toBe(13);
    expect(result.parsed).toBe(2);
    expect(result.texts).toEqual([]);
  });

  it('keeps later usage fields over earlier ones and never sums them', () => {
    const tap = createStreamTap(openai, CHAT);
    tap.push(Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}\n\n'));
    tap.push(Buffer.from('data: {"choices":[],"usage":{"completion_tokens":9}}\n\n'));
    expect(tap.end().usage).toEqual({ input: 5, output: 9 });
  });

  it('returns the generated text only when no output count was reported', () => {
    const tap = createStreamTap(openai, CHAT);
    tap.push(Buffer.from(chunk('Hello') + chunk(' world')));
    expect(tap.end()).toMatchObject({ reported: false, texts: ['Hello', ' world'], model: 'm' });
  });

  it('stops keeping event data once the output count is reported', () => {
    const tap = createStreamTap(openai, CHAT, { maxRetainedBytes: 1000 });
    tap.push(Buffer.from(chunk('early')));
    tap.push(
      Buffer.from(
        'data: {"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n',
      ),
    );
    for (let i = 0; i < 200; i++) tap.push(Buffer.from(chunk('abcdefghij')));
    expect(tap.end()).toMatchObject({ usage: { input: 3, output: 1 }, texts: [], retainedBytes: 0 });
    const unreported = createStreamTap(openai, CHAT, { maxRetainedBytes: 1000 });
    unreported.push(Buffer.from(chunk('early')));
    expect(unreported.end().retainedBytes).toBeGreaterThan(0);
  });

  it('bounds what it keeps for estimates', () => {
    const tap = createStreamTap(openai, CHAT, { maxRetainedBytes: 1000 });
    for (let i = 0; i < 200; i++) tap.push(Buffer.from(chunk('abcdefghij')));
    const texts = tap.end().texts;
    expect(texts.join('').length).toBeGreaterThanOrEqual(1000);
    expect(texts.join('').length).toBeLessThan(1100);
  });

  it('contains a dialect that throws and keeps metering', () => {
    const faulty: Dialect = {
      ...openai,
      usageFromEvent(event, route) {
        if (event.data.includes('boom')) throw new Error('bug');
        return openai.usageFromEvent(event, route);
      },
    };
    const tap = createStreamTap(faulty, CHAT);
    tap.push(
      Buffer.from(
        'data: {"error":"boom"}\n\ndata: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3}}\n\n',
      ),
    );
    expect(tap.end().usage).toEqual({ input: 2, output: 3 });
  });

  it('skips events that are not JSON', () => {
    const tap = createStreamTap(openai, CHAT);
    tap.push(
      Buffer.from('data: {"usage":{\n\ndata: [DONE]\n\ndata: {"choices":[],"usage":{"prompt_tokens":1}}\n\n'),
    );
    expect(tap.end().usage).toEqual({ input: 1 });
  });
});

describe('usageFromJsonBody', () => {
  it('meters a body that turned out to be a stream in the dialect format', () => {
    const obs = usageFromJsonBody(
      ollama,
      ollama.match('POST', '/api/chat')!,
      fixture('ollama/chat-stream.ndjson'),
    );
    expect(obs).toEqual({ usage: { input: 26, output: 282 }, model: 'llama3.2' });
  });

  it('returns undefined for a body it cannot read', () => {
    expect(usageFromJsonBody(openai, CHAT, Buffer.from('<html>bad gateway</html>'))).toBeUndefined();
  });
});
