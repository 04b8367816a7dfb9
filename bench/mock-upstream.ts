/**
 * The benchmark's stand-in for an AI provider: OpenAI chat completions (and, at
 * /v1/messages, the same answer in Anthropic's format for the translated target), JSON and SSE, as
 * cheap to serve as possible so that the proxy under test, not the upstream, is what the
 * benchmark measures. Every answer is built once at start; a request is told apart by a byte
 * search of its body (`"stream":true`, `"include_usage":true`), never by parsing it.
 *
 * A stream is 20 content chunks (the first also carries the role), then a finish chunk,
 * the usage-only chunk when the request asked for it, and `data: [DONE]`, each written
 * with its own `res.write` as a provider's server does.
 *
 * Run: `node --import tsx bench/mock-upstream.ts --port 0`; prints `listening <port>`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

/** Content chunks per stream (the "20 chunks"). */
export const STREAM_CHUNKS = 20;
/** The model id the upstream reports, whatever was asked. */
export const UPSTREAM_MODEL = 'gpt-4o-mini-2024-07-18';

const USAGE = { prompt_tokens: 42, completion_tokens: STREAM_CHUNKS, total_tokens: 42 + STREAM_CHUNKS };
const CREATED = 1_767_225_600;

const JSON_BODY = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: CREATED,
    model: UPSTREAM_MODEL,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'word '.repeat(STREAM_CHUNKS).trim(), refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: USAGE,
    system_fingerprint: 'fp_bench',
  }),
);

function chunk(delta: object, finish: string | null, withUsage: boolean): Buffer {
  const body = {
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: CREATED,
    model: UPSTREAM_MODEL,
    system_fingerprint: 'fp_bench',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  };
  return Buffer.from(`data: ${JSON.stringify(body)}\n\n`);
}

/** The writes of one stream, with or without the usage chunk `stream_options.include_usage` asks for. */
function streamWrites(withUsage: boolean): Buffer[] {
  const writes = [chunk({ role: 'assistant', content: 'word' }, null, withUsage)];
  for (let i = 1; i < STREAM_CHUNKS; i++) writes.push(chunk({ content: ' word' }, null, withUsage));
  writes.push(chunk({}, 'stop', withUsage));
  if (withUsage) {
    const usageChunk = {
      id: 'chatcmpl-bench',
      object: 'chat.completion.chunk',
      created: CREATED,
      model: UPSTREAM_MODEL,
      system_fingerprint: 'fp_bench',
      choices: [],
      usage: USAGE,
    };
    writes.push(Buffer.from(`data: ${JSON.stringify(usageChunk)}\n\n`));
  }
  writes.push(Buffer.from('data: [DONE]\n\n'));
  return writes;
}

const STREAM_PLAIN = streamWrites(false);
const STREAM_WITH_USAGE = streamWrites(true);
const STREAM_FLAG = Buffer.from('"stream":true');
const USAGE_FLAG = Buffer.from('"include_usage":true');
const JSON_HEADERS = { 'content-type': 'application/json', 'content-length': String(JSON_BODY.length) };
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

/** The same answer in Anthropic's Messages wire format, for the translated target. */
const ANTHROPIC_USAGE = { input_tokens: USAGE.prompt_tokens, output_tokens: STREAM_CHUNKS };
const ANTHROPIC_JSON = Buffer.from(
  JSON.stringify({
    id: 'msg_bench',
    type: 'message',
    role: 'assistant',
    model: 'claude-bench',
    content: [{ type: 'text', text: 'word '.repeat(STREAM_CHUNKS).trim() }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: ANTHROPIC_USAGE,
  }),
);
const event = (type: string, data: object): Buffer =>
  Buffer.from(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
const ANTHROPIC_STREAM: Buffer[] = [
  event('message_start', {
    message: {
      id: 'msg_bench',
      type: 'message',
      role: 'assistant',
      model: 'claude-bench',
      content: [],
      usage: { ...ANTHROPIC_USAGE, output_tokens: 1 },
    },
  }),
  event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
  ...Array.from({ length: STREAM_CHUNKS }, (_, i) =>
    event('content_block_delta', {
      index: 0,
      delta: { type: 'text_delta', text: i === 0 ? 'word' : ' word' },
    }),
  ),
  event('content_block_stop', { index: 0 }),
  event('message_delta', {
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { output_tokens: STREAM_CHUNKS },
  }),
  event('message_stop', {}),
];
const ANTHROPIC_JSON_HEADERS = {
  'content-type': 'application/json',
  'content-length': String(ANTHROPIC_JSON.length),
};

function answerAnthropic(body: Buffer, res: ServerResponse): void {
  if (body.indexOf(STREAM_FLAG) === -1) {
    res.writeHead(200, ANTHROPIC_JSON_HEADERS);
    res.end(ANTHROPIC_JSON);
    return;
  }
  res.writeHead(200, SSE_HEADERS);
  for (const write of ANTHROPIC_STREAM) res.write(write);
  res.end();
}

function answer(body: Buffer, res: ServerResponse, anthropic: boolean): void {
  if (anthropic) return answerAnthropic(body, res);
  if (body.indexOf(STREAM_FLAG) === -1) {
    res.writeHead(200, JSON_HEADERS);
    res.end(JSON_BODY);
    return;
  }
  const writes = body.indexOf(USAGE_FLAG) === -1 ? STREAM_PLAIN : STREAM_WITH_USAGE;
  res.writeHead(200, SSE_HEADERS);
  for (const write of writes) res.write(write);
  res.end();
}

/** The request listener: answers every POST as a chat completion, anything else with 404. */
export function handleMockRequest(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'POST') {
    res.writeHead(404, { 'content-length': '0' });
    res.end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  const anthropic = req.url?.startsWith('/v1/messages') === true;
  req.on('end', () =>
    answer(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks), res, anthropic),
  );
}

function main(): void {
  const portArg = process.argv.indexOf('--port');
  const port = portArg >= 0 ? Number(process.argv[portArg + 1]) : 0;
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, handleMockRequest);
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
