/**
 * Test harness for translators: fixed ids, upstream bytes fed through the real event framer
 * in chosen pieces, and a node:http server on port 0 that serves translated bytes to the
 * official openai SDK, so tests check what a real client sees.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import type { IdSource } from '../../src/translate/openai-chat-response.js';
import type { StreamTranslator } from '../../src/translate/translator.js';
import { createEventFramer, type StreamFormat } from '../../src/usage/event-framer.js';

/** Ids that count up from 1 and a clock stopped at 1700000000, for byte-exact assertions. */
export function fixedIds(): IdSource {
  let completion = 0;
  let call = 0;
  return {
    completionId: () => `chatcmpl-test${++completion}`,
    toolCallId: () => `call_test${++call}`,
    now: () => 1_700_000_000,
  };
}

/** The stream translator's whole output for `bytes` cut into pieces at `cuts` (sorted offsets). */
export function translateStream(
  translator: StreamTranslator,
  format: StreamFormat,
  bytes: Buffer,
  cuts: readonly number[] = [],
): string {
  const framer = createEventFramer(format);
  let out = '';
  const feed = (block: Buffer): void => {
    const event = framer.eventOf(block);
    if (event) out += translator.push(event);
  };
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    for (const block of framer.push(bytes.subarray(start, cut))) feed(block);
    start = cut;
  }
  const rest = framer.end();
  if (rest.length > 0) feed(rest);
  return out + translator.end();
}

/** The JSON payloads of an SSE text (one per `data:` event), `[DONE]` kept as the string. */
export function sseEvents(sse: string): unknown[] {
  return sse
    .split('\n\n')
    .filter((block) => block !== '')
    .map((block) => {
      const data = block.replace(/^data: /, '');
      return data === '[DONE]' ? data : (JSON.parse(data) as unknown);
    });
}

/** What a test server answers: a status and a body with its content type. */
export interface Canned {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

/** Serves one canned answer to every request; returns an openai client pointed at it. */
export async function cannedServer(canned: Canned): Promise<{ client: OpenAI; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(canned.status, { 'content-type': canned.contentType });
      res.end(canned.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = new OpenAI({ apiKey: 'test', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  const close = (): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
  return { client, close };
}

export const SSE_TYPE = 'text/event-stream';
export const JSON_TYPE = 'application/json';
