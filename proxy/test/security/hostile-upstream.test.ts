/**
 * What a broken or hostile upstream (a compromised provider, a buggy self-hosted server)
 * can do to the proxy itself, and so to every other tenant on it: answers shaped to cost
 * the meter far more memory or CPU than their size says. Each is sent by a raw node:http
 * server standing in for the upstream, through a real proxy.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { gzipSync } from 'node:zlib';
import { runInNewContext } from 'node:vm';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessLineOf, KEYS, startHarness, type Harness } from '../helpers/harness.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A raw upstream: each request goes to whatever `handler` is at the time. */
async function rawUpstream(): Promise<{ url: string; server: Server; handle(h: Handler): void }> {
  let handler: Handler = (_req, res) => res.end('{}');
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(req, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, handle: (h) => (handler = h) };
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapMiB(): number {
  gc();
  return process.memoryUsage().heapUsed / 1048576;
}

/**
 * Runs `work` (one request through the proxy, in this process) and returns the CPU time it
 * took, in ms: what the proxy spent on the answer, during which it served no one else.
 */
async function cpuMs(work: () => Promise<void>): Promise<number> {
  const start = process.cpuUsage();
  await work();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const accessLine = (h: Harness, id: string) => accessLineOf(h, id, 3_000);

describe('a hostile upstream', () => {
  let h: Harness;
  let upstream: Awaited<ReturnType<typeof rawUpstream>>;

  beforeAll(async () => {
    upstream = await rawUpstream();
    h = await startHarness({
      config: (base) => ({
        ...base,
        upstream: { ...(base.upstream as object), url: upstream.url },
        max_json_response_bytes: 4 * 1024 * 1024,
      }),
    });
  });
  afterAll(async () => {
    await h.close();
    await new Promise((r) => upstream.server.close(r));
  });

  /** A tenant's streamed chat request through the proxy. */
  const streamedChat = () =>
    request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'small-model',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      }),
    });

  it('cannot make a stream of tiny events cost the meter more memory than its bound', async () => {
    // 4 MiB of 2-byte NDJSON lines, each an event the meter kept as its own Buffer view for
    // the output estimate: two million of them, over 200 MB of heap for one stream.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let sent!: () => void;
    const allSent = new Promise<void>((r) => (sent = r));
    upstream.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const chunk = Buffer.from('1\n'.repeat(32 * 1024));
      for (let i = 0; i < 64; i++) res.write(chunk);
      sent();
      void released.then(() => res.end('{"done":true,"prompt_eval_count":3,"eval_count":2}\n'));
    });
    const before = heapMiB();
    const res = await request(`${h.proxy.url}/api/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    let received = 0;
    res.body.on('data', (c: Buffer) => (received += c.length));
    await allSent;
    for (let i = 0; i < 500 && received < 4 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 10));
    expect(received).toBe(4 * 1024 * 1024);
    const held = heapMiB() - before;
    release();
    await new Promise((r) => res.body.on('end', r));
    expect(held).toBeLessThan(40);
    const line = await accessLine(h, String(res.headers['x-lanekeeper-request-id']));
    expect(line).toMatchObject({ input_tokens: 3, output_tokens: 2, provenance: 'reported' });
  });

  it('cannot inflate a gzip bomb into memory while the client is not reading', async () => {
    // 64 MiB of SSE in about 64 KiB of gzip: passed on without regard to the client's pace,
    // all of it went into the response's buffer at once.
    const event = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'x'.repeat(1000) } }] })}\n\n`;
    const bomb = gzipSync(Buffer.from(event.repeat(Math.ceil((64 * 1024 * 1024) / event.length))));
    upstream.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
      res.end(bomb);
    });
    gc();
    const before = process.memoryUsage().arrayBuffers;
    const res = await streamedChat();
    expect(res.statusCode).toBe(200);
    // The client reads nothing for a while: the proxy must wait for it, not inflate ahead.
    await new Promise((r) => setTimeout(r, 1_000));
    gc();
    const held = (process.memoryUsage().arrayBuffers - before) / 1048576;
    expect(held).toBeLessThan(32);
    // Read at last, it all arrives.
    let received = 0;
    for await (const chunk of res.body) received += (chunk as Buffer).length;
    expect(received).toBeGreaterThan(60 * 1024 * 1024);
  });

  it('passes on a 400 too long to be a stream_options refusal instead of holding it whole', async () => {
    // A 400 to a request the proxy added stream_options to is held to see whether it blames
    // that field; one that goes on and on was held for ever, in memory.
    upstream.handle((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.write(`{"error":{"message":"${'x'.repeat(256 * 1024)}`);
      // ...and never ends.
    });
    const res = await Promise.race([
      streamedChat(),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 3_000)),
    ]);
    expect(res?.statusCode).toBe(400);
    res?.body.destroy();
  });

  it('cannot cost seconds of CPU with an over-cap JSON answer whose tail is all usage keys', async () => {
    // Over max_json_response_bytes the usage is read from the last 64 KiB; a tail of
    // `"usage":{` repeated, never closed, cost a scan to its end per key: half a second of
    // a blocked proxy per answer (a few KiB gzipped).
    const body = '"usage":{'.repeat(512 * 1024);
    upstream.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
    const cpu = await cpuMs(async () => {
      const res = await request(`${h.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
      });
      await res.body.text();
      const line = await accessLine(h, String(res.headers['x-lanekeeper-request-id']));
      expect(line.provenance).toBe('estimated');
    });
    expect(cpu).toBeLessThan(350);
  });

  it.each([
    ['a stream event', true],
    ['a JSON answer', false],
  ])('cannot cost seconds of CPU with %s nested a million levels deep', async (_what, stream) => {
    // 2 MiB of `[[[[…` gzips to a few KiB; V8 parses it at about half a microsecond a level,
    // once per reader (meter, usage hider): seconds of a proxy that serves no one.
    const depth = 1024 * 1024;
    const nested = `{"usage":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const body = gzipSync(stream ? `data: ${nested}\n\ndata: [DONE]\n\n` : nested);
    upstream.handle((_req, res) => {
      res.writeHead(200, {
        'content-type': stream ? 'text/event-stream' : 'application/json',
        'content-encoding': 'gzip',
      });
      res.end(body);
    });
    const cpu = await cpuMs(async () => {
      const res = await request(`${h.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
        body: JSON.stringify({ stream, messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.statusCode).toBe(200);
      await res.body.text();
      await accessLine(h, String(res.headers['x-lanekeeper-request-id']));
    });
    expect(cpu).toBeLessThan(350);
  });
});
