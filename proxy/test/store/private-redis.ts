/**
 * A private redis-server for tests that must stop and restart Redis (never the shared one).
 * It runs without persistence on a free loopback port, as a child of the test process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { freePort } from '../helpers/waiting.js';

export { freePort };

/**
 * Calls per command since the server's last `CONFIG RESETSTAT`, from `INFO commandstats`
 * (`{ evalsha: 3, zadd: 40, ... }`; subcommand lines such as `config|resetstat` are left out).
 */
export async function commandCalls(client: Pick<Redis, 'info'>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const line of (await client.info('commandstats')).split('\n')) {
    const match = /^cmdstat_(\w+):calls=(\d+)/.exec(line);
    if (match) counts[match[1]!] = Number(match[2]);
  }
  return counts;
}

/** A redis-server child that can be stopped and started again on the same port. */
export class PrivateRedis {
  private child: ChildProcess | undefined;

  constructor(
    readonly port: number,
    /** More redis-server arguments, e.g. `--replicaof` for a replica that refuses writes. */
    private readonly options: { extraArgs?: readonly string[] } = {},
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        // DEBUG SLEEP slows the server for the security tests (loopback only).
        '--enable-debug-command',
        'local',
        ...(this.options.extraArgs ?? []),
      ],
      {
        stdio: 'ignore',
      },
    );
    this.child = child;
    // Bounded wait for PING: at most 100 tries, 50 ms apart.
    for (let i = 0; i < 100; i++) {
      const probe = new Redis(this.port, '127.0.0.1', {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => {});
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        // not up yet
      } finally {
        probe.disconnect();
      }
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`redis-server on port ${this.port} did not answer`);
  }

  /** Freezes the server (SIGSTOP): connections stay open but nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    await exited;
  }
}

/** Polls `check` every 50 ms, at most `tries` times; resolves once it holds, else throws. */
/** Deletes every key under `prefix` (a test's own keys on a shared Redis). */
export async function unlinkPrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== '0');
}

export async function eventually(check: () => Promise<boolean> | boolean, tries = 300): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('condition not reached');
}
