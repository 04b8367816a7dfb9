import { describe, expect, it } from 'vitest';
import { tally } from './trace-perf.js';

/** A `perf script -F pid,tid,ip,sym` sample: its pid/tid line, then its frames, leaf first. */
const sample = (pid: number, tid: number, ...frames: string[]) =>
  ` ${pid}/${tid}  \n${frames.map((frame, i) => `\t    ${(0x1000 + i).toString(16)} ${frame}`).join('\n')}\n`;

describe('trace-perf tally', () => {
  it('counts main-thread samples per process and splits the traced one by where in the tracer it ran', () => {
    const tracer = 'file:///x/proxy/src/tracing';
    const script = [
      sample(10, 10, 'JS:*run file:///x/proxy/src/server/exchange.js:1:1'),
      sample(10, 11, 'v8::internal::Scavenger::ScavengeObject'),
      sample(
        20,
        20,
        `JS:*begin ${tracer}/otlp-proto.js:1:1`,
        `JS:*write ${tracer}/otel-request-tracer.js:2:2`,
        `JS:*flush ${tracer}/otel-request-tracer.js:3:3`,
      ),
      sample(
        20,
        20,
        'Builtins_LoadIC',
        `JS:*flush ${tracer}/otel-request-tracer.js:3:3`,
        `JS:^sendNow ${tracer}/span-batch.js:4:4`,
      ),
      sample(
        20,
        20,
        'JS:*send /x/node_modules/@opentelemetry/otlp-exporter-base/build/src/x.js:1:1',
        `JS:*send ${tracer}/span-batch.js:5:5`,
      ),
      // The transport's own frames are exporting too, with undici's beneath them.
      sample(
        20,
        20,
        'JS:*dispatch /x/node_modules/undici/lib/dispatcher/agent.js:1:1',
        `JS:*sendOnce ${tracer}/otlp-transport.js:6:6`,
      ),
      sample(
        20,
        20,
        `JS:*randomHex ${tracer}/otel-request-tracer.js:9:9`,
        'JS:*run file:///x/proxy/src/server/exchange.js:1:1',
      ),
      sample(20, 20, 'JS:*run file:///x/proxy/src/server/exchange.js:1:1'),
    ].join('\n');
    const { total, classes } = tally(script, 20);
    // The helper thread (11) is not the proxy's event loop.
    expect(Object.fromEntries(total)).toEqual({ 10: 1, 20: 6 });
    expect(Object.fromEntries(classes)).toEqual({ write: 2, export: 2, 'request path': 1 });
  });
});
