import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { PROXY_NODE_FLAGS, startPrivateRedis } from './targets.js';

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('startPrivateRedis', () => {
  it('starts a redis-server of its own that answers, and stops it', async () => {
    const redis = await startPrivateRedis(undefined);
    const port = Number(new URL(redis.url).port);
    expect(port).not.toBe(6379);
    const client = new Redis(redis.url);
    try {
      await client.set('bench-probe', 'yes');
      expect(await client.get('bench-probe')).toBe('yes');
      // Nothing else is in it: the shared server's keys are not here.
      expect(await client.dbsize()).toBe(1);
    } finally {
      client.disconnect();
      await redis.stop();
    }
    expect(await refused(port)).toBe(true);
  });
});

describe('PROXY_NODE_FLAGS', () => {
  it('are the flags the proxy image starts node with, so the bench measures what ships', () => {
    const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
    const cmd = dockerfile
      .split('\n')
      .filter((line) => line.startsWith('CMD ["node"') && line.includes('"proxy", "--config"'));
    expect(cmd).toHaveLength(1);
    const argv = JSON.parse((cmd[0] as string).slice(4)) as string[];
    expect(argv.slice(1, argv.indexOf('proxy/bin/lanekeeper.js'))).toEqual(PROXY_NODE_FLAGS);
  });
});
