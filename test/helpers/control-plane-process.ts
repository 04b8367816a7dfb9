/**
 * A real `lanekeeper control-plane` process, as the end-to-end tests that read its log run
 * it: its stdout and stderr parsed line by line (a line that is not JSON kept as `unparsed`),
 * and its URL once it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { until } from '../../proxy/test/helpers/waiting.js';

const CLI = join(import.meta.dirname, '..', '..', 'proxy', 'bin', 'lanekeeper.js');

export interface LogLine {
  level: string;
  msg: string;
  dependency?: string;
  err?: unknown;
  [key: string]: unknown;
}

export interface ControlPlaneProcess {
  cp: ChildProcess;
  /** Every line, parsed, in order. */
  lines: LogLine[];
  /** Every line as written. */
  raw: string[];
  url: string;
}

/** Starts it with `env` over this process's environment; resolves once it listens. */
export async function startControlPlaneProcess(env: NodeJS.ProcessEnv): Promise<ControlPlaneProcess> {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const cp = spawn(process.execPath, [CLI, 'control-plane'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [cp.stdout, cp.stderr]) {
    stream?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        raw.push(line);
        try {
          lines.push(JSON.parse(line) as LogLine);
        } catch {
          lines.push({ level: 'unparsed', msg: line });
        }
      }
    });
  }
  const listening = await until('the control plane to listen', async () =>
    lines.find((l) => l.msg === 'control plane listening'),
  );
  return { cp, lines, raw, url: `http://127.0.0.1:${String(listening.port)}` };
}
