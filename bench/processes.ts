/**
 * Process plumbing for the benchmark: free loopback ports, spawning each server as its own
 * process (pinned to a core with `taskset` when there are cores to spare), waiting until it
 * answers, reading its CPU time and memory from /proc, and stopping it by its own pid.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

/** Clock ticks per second for /proc/<pid>/stat times (getconf CLK_TCK; 100 on Linux). */
export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Where each role runs: `undefined` means not pinned. */
export interface CoreLayout {
  load: string | undefined;
  upstream: string | undefined;
  proxy: string | undefined;
  description: string;
}

/**
 * 1 core: nothing pinned. 2 cores: the load generator on core 0, every server (upstream and
 * proxy) on core 1, as the issue measured. 3+ cores: load on 0, upstream on 1, proxy on 2.
 */
export function coreLayout(cores = availableParallelism(), pin = true): CoreLayout {
  if (!pin || cores < 2) {
    return { load: undefined, upstream: undefined, proxy: undefined, description: 'not pinned' };
  }
  if (cores === 2) {
    return {
      load: '0',
      upstream: '1',
      proxy: '1',
      description: 'load generator on core 0; upstream and proxy on core 1',
    };
  }
  return {
    load: '0',
    upstream: '1',
    proxy: '2',
    description: 'load generator on core 0, upstream on core 1, proxy on core 2',
  };
}

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A spawned server. */
export interface Running {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  stop(): Promise<void>;
}

/** `command args`, through taskset when `core` is set. */
export function pinned(core: string | undefined, command: string, args: string[]): [string, string[]] {
  return core === undefined ? [command, args] : ['taskset', ['-c', core, command, ...args]];
}

/** Spawns `command args` (through taskset when `core` is set); stdout and stderr go to `log` or are dropped. */
export function start(name: string, command: string, args: string[], core: string | undefined): Running {
  const [file, argv] = pinned(core, command, args);
  const child = spawn(file, argv, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 8_000) stderr += chunk.toString();
  });
  child.on('exit', (code, signal) => {
    if (code !== 0 && code !== null && signal === null) {
      process.stderr.write(`[bench] ${name} exited with ${code}\n${stderr}\n`);
    }
  });
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  const pid = child.pid;
  return {
    name,
    child,
    pid,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Polls `url` until it answers (any status), for at most `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      return;
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

/**
 * CPU seconds a process has used so far, all its threads. From the scheduler's nanosecond
 * count (/proc/PID/task/TID/schedstat) where the kernel keeps it: user plus system time
 * from /proc/PID/stat come in 10 ms ticks, which over a window of a few thousand requests
 * is ±2 µs a request of rounding on each side of a difference.
 */
export function cpuSeconds(pid: number): number {
  try {
    let nanoseconds = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        nanoseconds += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    if (nanoseconds > 0) return nanoseconds / 1e9;
  } catch {
    // No schedstat: the ticks below.
  }
  return tickSeconds(pid);
}

/** User plus system CPU seconds from /proc/PID/stat, in clock ticks (threads that ended included). */
function tickSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident set size of a process in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}
