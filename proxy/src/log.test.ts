import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineBatcher, createLogger, redactLogObject } from './log.js';

/** A logger whose lines are collected as parsed JSON. */
function capture(): { lines: Record<string, unknown>[]; logger: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger('info', sink) };
}

describe('log redaction', () => {
  it('drops top-level headers and body', () => {
    const { lines, logger } = capture();
    logger.info({ headers: { authorization: 'Bearer sk-1' }, body: '{"a":1}', status: 200 }, 'request');
    expect(lines[0]).toMatchObject({ status: 200, msg: 'request', service: 'lanekeeper-proxy' });
    expect(lines[0]).not.toHaveProperty('headers');
    expect(lines[0]).not.toHaveProperty('body');
  });

  it.each(['authorization', 'x-api-key', 'api-key', 'x-goog-api-key'])(
    'drops %s from any top-level object and keeps its other fields',
    (field) => {
      const { lines, logger } = capture();
      logger.info({ req: { [field]: 'secret', method: 'POST' } }, 'with credentials');
      expect(lines[0]?.req).toEqual({ method: 'POST' });
      expect(JSON.stringify(lines[0])).not.toContain('secret');
    },
  );

  it('never changes the object it was given', () => {
    const original = { req: { authorization: 'Bearer sk-1' }, headers: { a: 'b' } };
    const redacted = redactLogObject(original);
    expect(redacted).toEqual({ req: {} });
    expect(original).toEqual({ req: { authorization: 'Bearer sk-1' }, headers: { a: 'b' } });
  });

  it('returns an access-log line as it is, without copying it', () => {
    const line = { request_id: 'r1', tenant: 'acme', status: 200, stream: false, cost_usd: null };
    expect(redactLogObject(line)).toBe(line);
  });

  it('keeps an error serialisable as an error after removing a credential from it', () => {
    const { lines, logger } = capture();
    const err = Object.assign(new Error('upstream said no'), { authorization: 'Bearer sk-2' });
    logger.error({ err }, 'failed');
    expect(lines[0]?.err).toMatchObject({ type: 'Error', message: 'upstream said no' });
    expect(JSON.stringify(lines[0])).not.toContain('sk-2');
  });
});

describe('errors in log lines', () => {
  it('are their type, message, code and cause, never a stack, unless at debug', () => {
    const { lines, logger } = capture();
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6333'), { code: 'ECONNREFUSED' });
    logger.warn({ err: new TypeError('fetch failed', { cause }) }, 'qdrant unreachable');
    expect(lines[0]?.err).toEqual({
      type: 'TypeError',
      message: 'fetch failed',
      cause: 'connect ECONNREFUSED 127.0.0.1:6333 (ECONNREFUSED)',
    });
    expect(JSON.stringify(lines[0])).not.toContain('    at ');

    const debugLines: Record<string, unknown>[] = [];
    const debug = createLogger(
      'debug',
      new Writable({
        write(chunk: Buffer, _e, done) {
          debugLines.push(JSON.parse(chunk.toString()));
          done();
        },
      }),
    );
    debug.warn({ err: new Error('boom') }, 'with stack');
    expect(String((debugLines[0]?.err as { stack?: string }).stack)).toContain('    at ');
    // The level follows a reload, and so do the stacks: a proxy started at debug kept them.
    debug.level = 'info';
    debug.warn({ err: new Error('boom') }, 'without stack');
    expect(debugLines[1]?.err).toEqual({ type: 'Error', message: 'boom' });
    debug.level = 'debug';
    debug.warn({ err: new Error('boom') }, 'with stack again');
    expect(String((debugLines[2]?.err as { stack?: string }).stack)).toContain('    at ');
  });
});

describe('LineBatcher', () => {
  function inner() {
    const blocks: string[] = [];
    let synced = 0;
    return {
      blocks,
      synced: () => synced,
      dest: {
        write: (block: string) => void blocks.push(block),
        flushSync: () => void synced++,
        end: () => undefined,
      },
    };
  }

  it('hands lines on in order, one block once the batch size is reached', () => {
    const { blocks, dest } = inner();
    const batcher = new LineBatcher(dest, 30, 60_000);
    batcher.write('{"n":1}\n');
    batcher.write('{"n":2}\n');
    batcher.write('{"n":3}\n');
    expect(blocks).toEqual([]);
    batcher.write('{"n":4}\n');
    expect(blocks).toEqual(['{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n']);
    batcher.write('{"n":5}\n');
    batcher.end();
    expect(blocks).toEqual(['{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n', '{"n":5}\n']);
  });

  it('writes a quiet period’s lines within the flush interval', async () => {
    const { blocks, dest } = inner();
    const batcher = new LineBatcher(dest, 1 << 20, 20);
    batcher.write('{"quiet":true}\n');
    expect(blocks).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(blocks).toEqual(['{"quiet":true}\n']);
    batcher.end();
  });

  it('flushSync writes what is gathered and syncs the destination (pino calls it for fatal lines)', () => {
    const { blocks, dest, synced } = inner();
    const batcher = new LineBatcher(dest, 1 << 20, 60_000);
    batcher.write('{"last":"words"}\n');
    batcher.flushSync();
    expect(blocks).toEqual(['{"last":"words"}\n']);
    expect(synced()).toBe(1);
    batcher.end();
  });
});
