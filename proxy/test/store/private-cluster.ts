/**
 * A private three-master Redis Cluster for tests (never the shared Redis): three
 * cluster-enabled redis-server children on free loopback ports, joined with
 * `redis-cli --cluster create`, in a temporary directory removed on stop.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { eventually, freePort } from './private-redis.js';

const run = promisify(execFile);

export class PrivateCluster {
  private readonly children: ChildProcess[] = [];
  private dir = '';
  ports: number[] = [];

  /** A URL naming the first node; the client discovers the rest. */
  get url(): string {
    return `redis://127.0.0.1:${this.ports[0]}`;
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'lk-cluster-'));
    for (let i = 0; i < 3; i++) this.ports.push(await freePort());
    for (const port of this.ports) {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes'];
      args.push('--cluster-config-file', `nodes-${port}.conf`, '--dir', this.dir);
      args.push('--save', '', '--appendonly', 'no', '--daemonize', 'no');
      // DEBUG SLEEP slows a node for the failure-detector tests (loopback only).
      args.push('--enable-debug-command', 'local');
      this.children.push(spawn('redis-server', args, { stdio: 'ignore' }));
    }
    for (const port of this.ports) await eventually(() => pingable(port), 100);
    const nodes = this.ports.map((p) => `127.0.0.1:${p}`);
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of this.ports) await eventually(() => clusterOk(port), 200);
  }

  async stop(): Promise<void> {
    for (const child of this.children) {
      if (child.exitCode !== null) continue;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

async function withNode<T>(port: number, use: (node: Redis) => Promise<T>, fallback: T): Promise<T> {
  const node = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  node.on('error', () => {});
  try {
    await node.connect();
    return await use(node);
  } catch {
    return fallback;
  } finally {
    node.disconnect();
  }
}

function pingable(port: number): Promise<boolean> {
  return withNode(port, async (node) => (await node.ping()) === 'PONG', false);
}

function clusterOk(port: number): Promise<boolean> {
  return withNode(
    port,
    async (node) => String(await node.cluster('INFO')).includes('cluster_state:ok'),
    false,
  );
}
