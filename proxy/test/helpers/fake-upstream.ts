/**
 * A real HTTP server on port 0 standing in for an AI provider in tests. It records exactly
 * what it received (method, path, headers, parsed body) and answers with whatever the test
 * scripts: JSON, a stream of raw chunks (optionally paced), gzip, an error status, or a
 * connection that never answers.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface Received {
  method: string;
  path: string;
  query: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: unknown;
}

export type Reply =
  | {
      kind: 'json';
      status?: number;
      body: unknown;
      headers?: Record<string, string>;
      gzip?: boolean;
      /** Answer only once this settles: holds the request in flight while a test looks. */
      until?: Promise<void>;
    }
  | {
      kind: 'stream';
      status?: number;
      chunks: (string | Buffer)[];
      contentType?: string;
      delayMs?: number;
      headers?: Record<string, string>;
      gzip?: boolean;
      /** Stop after this many chunks and destroy the socket (a cut-off upstream). */
      cutAfter?: number;
    }
  | { kind: 'hang' };

export interface FakeUpstream {
  url: string;
  received: Received[];
  /** Sets how the next requests are answered (a function sees each request). */
  reply(handler: Reply | ((req: Received) => Reply)): void;
  /** Resolves when a request's response was aborted by the proxy (the socket closed early). */
  aborted: number;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function answer(res: ServerResponse, reply: Reply, state: { aborted: number }): Promise<void> {
  if (reply.kind === 'hang') return;
  if (reply.kind === 'json') {
    if (reply.until) await reply.until;
    const text = Buffer.from(JSON.stringify(reply.body));
    const body = reply.gzip ? gzipSync(text) : text;
    res.writeHead(reply.status ?? 200, {
      'content-type': 'application/json',
      'content-length': String(body.length),
      ...(reply.gzip ? { 'content-encoding': 'gzip' } : {}),
      ...reply.headers,
    });
    res.end(body);
    return;
  }
  res.writeHead(reply.status ?? 200, {
    'content-type': reply.contentType ?? 'text/event-stream',
    ...(reply.gzip ? { 'content-encoding': 'gzip' } : {}),
    ...reply.headers,
  });
  let closed = false;
  res.on('close', () => {
    if (!res.writableFinished) {
      closed = true;
      state.aborted++;
    }
  });
  const chunks = reply.gzip
    ? [gzipSync(Buffer.concat(reply.chunks.map((c) => Buffer.from(c))))]
    : reply.chunks;
  for (let i = 0; i < chunks.length; i++) {
    if (closed) return;
    if (reply.cutAfter !== undefined && i >= reply.cutAfter) {
      // Let the bytes already written leave before the socket is cut.
      await new Promise((r) => setTimeout(r, 50));
      res.destroy();
      return;
    }
    res.write(chunks[i]);
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
  }
  res.end();
}

export async function startFakeUpstream(initial?: Reply | ((req: Received) => Reply)): Promise<FakeUpstream> {
  let handler: Reply | ((req: Received) => Reply) = initial ?? { kind: 'json', body: {} };
  const received: Received[] = [];
  const state = { aborted: 0 };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      // Origin-form targets are paths (`//x` included), as the proxy reads them.
      const url = new URL(`http://fake${req.url ?? '/'}`);
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = undefined;
      }
      const entry: Received = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.search.slice(1),
        headers: req.headers,
        raw,
        body,
      };
      received.push(entry);
      await answer(res, typeof handler === 'function' ? handler(entry) : handler, state);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    reply(next) {
      handler = next;
    },
    get aborted() {
      return state.aborted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An OpenAI chat completion body with the given usage. */
export function chatCompletion(model: string, content: string, usage: Record<string, unknown>): unknown {
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 1764400000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
    usage,
  };
}

/** A chat completion from `model` saying "served by <model>", 10 tokens in and 5 out. */
export function servedBy(model: string): Reply {
  return {
    kind: 'json',
    body: chatCompletion(model, `served by ${model}`, {
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
    }),
  };
}

/** A reply that answers any request with a chat completion naming the model it was asked for. */
export function echoModel(usage: Record<string, unknown>): (req: Received) => Reply {
  return (req) => ({
    kind: 'json',
    body: chatCompletion((req.body as { model?: string } | undefined)?.model ?? 'm', 'ok', usage),
  });
}

/** The SSE chunks of an OpenAI chat stream; with `includeUsage`, "usage":null on each chunk and a final usage-only chunk. */
export function chatStream(
  model: string,
  pieces: string[],
  usage: Record<string, unknown> | undefined,
  includeUsage: boolean,
): string[] {
  const chunk = (delta: unknown, finish: string | null) =>
    JSON.stringify({
      id: 'chatcmpl-s',
      object: 'chat.completion.chunk',
      created: 1764400000,
      model,
      choices: [{ index: 0, delta, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
  const events = [`data: ${chunk({ role: 'assistant', content: '' }, null)}\n\n`];
  for (const piece of pieces) events.push(`data: ${chunk({ content: piece }, null)}\n\n`);
  events.push(`data: ${chunk({}, 'stop')}\n\n`);
  if (includeUsage && usage) {
    events.push(
      `data: ${JSON.stringify({ id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1764400000, model, choices: [], usage })}\n\n`,
    );
  }
  events.push('data: [DONE]\n\n');
  return events;
}
