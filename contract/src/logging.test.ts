import { describe, expect, it } from 'vitest';
import { createOutageLog } from './logging.js';
import { endpointForLogs, traceExportReporter } from './telemetry.js';

function recorder() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    logger: {
      warn: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', fields, msg }),
      info: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'info', fields, msg }),
    },
  };
}

describe('createOutageLog', () => {
  it('writes one warning, then one summary a minute, then one recovery line', () => {
    let now = 0;
    const { lines, logger } = recorder();
    const outage = createOutageLog(logger, 'control plane', { now: () => now });
    // Three minutes of failures, one every 5 s.
    for (; now <= 180_000; now += 5_000) outage.failed(new Error('connect ECONNREFUSED 127.0.0.1:8081'));
    outage.succeeded();
    outage.succeeded();
    expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual([
      'warn control plane unavailable',
      'warn control plane still unavailable',
      'warn control plane still unavailable',
      'warn control plane still unavailable',
      'info control plane available again',
    ]);
    expect(lines[3]?.fields).toMatchObject({ failures: 37, down_for_s: 180 });
    expect(lines[4]?.fields).toMatchObject({ failures: 37, down_for_s: 185 });
    expect(outage.down).toBe(false);
  });

  it('never logs an Error (so no stack), and bounds a hostile error message to one line', () => {
    const { lines, logger } = recorder();
    const outage = createOutageLog(logger, 'redis');
    const error = new Error(`boom\n${'x'.repeat(10_000)}\n    at somewhere (file.js:1:1)`);
    outage.failed(error);
    const err = lines[0]?.fields.err;
    expect(typeof err).toBe('string');
    expect(err as string).not.toContain('\n');
    expect((err as string).length).toBeLessThanOrEqual(300);
  });

  it('starts a new outage after a recovery', () => {
    let now = 0;
    const { lines, logger } = recorder();
    const outage = createOutageLog(logger, 'redis', { now: () => now });
    outage.failed('a');
    outage.succeeded();
    now = 1_000;
    outage.failed('b');
    expect(lines.map((l) => l.msg)).toEqual([
      'redis unavailable',
      'redis available again',
      'redis unavailable',
    ]);
    expect(outage.down).toBe(true);
  });

  it("adds the caller's fields to the recovery line, without letting them replace its own", () => {
    let now = 0;
    const { lines, logger } = recorder();
    const outage = createOutageLog(logger, 'redis', { now: () => now });
    outage.succeeded({ delivered: 1 });
    expect(lines).toEqual([]);
    outage.failed('a');
    now = 2_000;
    outage.succeeded({ delivered: 12, dependency: 'spoofed', failures: -1 });
    expect(lines[1]).toEqual({
      level: 'info',
      msg: 'redis available again',
      fields: { delivered: 12, dependency: 'redis', failures: 1, down_for_s: 2 },
    });
  });

  it('writes its constant fields on every line, beneath its own', () => {
    let now = 0;
    const { lines, logger } = recorder();
    const outage = createOutageLog(logger, 'redis', {
      now: () => now,
      summaryMs: 10,
      fields: { endpoint: 'redis://r:6379', dependency: 'spoofed' },
    });
    outage.failed('a');
    now = 10;
    outage.failed('b');
    outage.succeeded();
    expect(lines.map((l) => [l.fields.endpoint, l.fields.dependency])).toEqual([
      ['redis://r:6379', 'redis'],
      ['redis://r:6379', 'redis'],
      ['redis://r:6379', 'redis'],
    ]);
  });
});

describe('traceExportReporter', () => {
  it('counts every failed batch into one outage of "trace export (otlp)" at the endpoint', () => {
    let now = 0;
    const { lines, logger } = recorder();
    const report = traceExportReporter(logger, 'http://collector:4318', { now: () => now });
    report(undefined);
    // A batch every 2 s for three minutes, each with a multi-line error and a stack.
    const error = new Error('connect ECONNREFUSED\n    at TCPConnectWrap.afterConnect (net.js:1:1)');
    for (; now <= 180_000; now += 2_000) report(error);
    report(undefined);
    report(undefined);
    expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual([
      'warn trace export (otlp) unavailable',
      'warn trace export (otlp) still unavailable',
      'warn trace export (otlp) still unavailable',
      'warn trace export (otlp) still unavailable',
      'info trace export (otlp) available again',
    ]);
    expect(lines[3]?.fields).toMatchObject({ endpoint: 'http://collector:4318', failures: 91 });
    expect(lines.every((l) => l.fields.endpoint === 'http://collector:4318')).toBe(true);
    expect(lines.some((l) => String(l.fields.err).includes('\n'))).toBe(false);
  });
});

describe('endpointForLogs', () => {
  it('keeps credentials and query tokens of a collector URL out of log lines', () => {
    expect(endpointForLogs('https://user:s3cret@collector:4318/otlp?api_key=t0ken')).toBe(
      'https://collector:4318/otlp',
    );
    expect(endpointForLogs('http://:s3cret@collector:4318')).toBe('http://collector:4318/');
    expect(endpointForLogs('http://collector:4318')).toBe('http://collector:4318');
    expect(endpointForLogs('not a url')).toBe('(invalid url)');
    const { lines, logger } = recorder();
    traceExportReporter(logger, 'https://user:s3cret@collector:4318?token=t0ken')(new Error('refused'));
    expect(JSON.stringify(lines)).not.toMatch(/s3cret|t0ken/);
  });
});
