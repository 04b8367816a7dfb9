/**
 * Drives a StreamTranslator the way the proxy will: upstream bytes, cut at the given
 * offsets, go through the event framer, each complete event into `push`, then `end`.
 */
import type { StreamTranslator } from '../../src/translate/translator.js';
import { createEventFramer } from '../../src/usage/event-framer.js';

/** Everything the translator writes for `bytes` delivered in pieces cut at `cuts`. */
export function translateStream(
  translator: StreamTranslator,
  bytes: Buffer,
  cuts: readonly number[] = [],
): string {
  const framer = createEventFramer('sse');
  const offsets = [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  let out = '';
  const feed = (block: Buffer) => {
    const event = framer.eventOf(block);
    if (event) out += translator.push(event);
  };
  let start = 0;
  for (const cut of [...offsets, bytes.length]) {
    for (const block of framer.push(bytes.subarray(start, cut))) feed(block);
    start = cut;
  }
  const rest = framer.end();
  if (rest.length > 0) feed(rest);
  return out + translator.end();
}

/** The JSON of every `data:` line in an SSE text, `[DONE]` kept as the string. */
export function dataOf(sse: string): unknown[] {
  return sse
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice(6))
    .map((data) => (data === '[DONE]' ? data : JSON.parse(data)));
}
