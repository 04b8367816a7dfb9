/**
 * The OTLP sink (otlp-sink.ts) in a child process of its own, for the tracing probes
 * (trace-cost.ts, trace-encode.ts): in the measured process its receiving and parsing would
 * be charged to the tracer. The child prints its URL, and what it received when its stdin ends.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startOtlpSink } from './otlp-sink.js';
import { pinned } from './processes.js';

const SELF = fileURLToPath(import.meta.url);

/**
 * Starts the sink in a child; `stop()` ends it and fills `received`. `core` pins it (taskset),
 * off the proxy's core, as a collector on another host would be.
 */
export async function startSinkProcess(core?: string) {
  const [file, args] = pinned(core, process.execPath, [...process.execArgv, SELF, '--sink']);
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const url = String((await lines.next()).value);
  const received = { requests: 0, bytes: 0 };
  return {
    url,
    received,
    async stop() {
      child.stdin.end();
      Object.assign(received, JSON.parse(String((await lines.next()).value)));
    },
  };
}

if (process.argv[1] === SELF && process.argv[2] === '--sink') {
  const sink = await startOtlpSink();
  process.stdout.write(`${sink.url}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    process.stdout.write(`${JSON.stringify(sink.received)}\n`);
    void sink.stop().then(() => process.exit(0));
  });
}
