// How a store URL becomes ioredis connection options: TLS for rediss://, credentials
// (percent-decoded), database number, and the timeout on every command.
import { describe, expect, it } from 'vitest';
import type { RedisStoreConfig } from '../config/schema.js';
import { connectionOptions } from './redis-client.js';

function config(redis: string): RedisStoreConfig {
  return {
    redis,
    key_prefix: 'lk:',
    cluster: false,
    timeout_ms: 250,
    usage_stream: 'usage',
    usage_stream_maxlen: 1000,
    retention_hours: 48,
  };
}

describe('connectionOptions', () => {
  it.each([
    ['redis://127.0.0.1:6379', { host: '127.0.0.1', port: 6379 }, false],
    ['redis://cache.internal', { host: 'cache.internal', port: 6379 }, false],
    [
      'rediss://default:s%40cret@redis.example:6380/2',
      { host: 'redis.example', port: 6380, username: 'default', password: 's@cret', db: 2 },
      true,
    ],
    ['redis://:onlypass@[::1]:7000', { host: '::1', port: 7000, password: 'onlypass' }, false],
  ])('reads %s', (url, expected, tls) => {
    const options = connectionOptions(config(url));
    expect(options).toMatchObject(expected);
    expect(options.tls !== undefined).toBe(tls);
    if (!('username' in expected)) expect(options.username).toBeUndefined();
  });

  it('gives ioredis a looser backstop timeout than timeout_ms and retries a command at most once', () => {
    expect(connectionOptions(config('redis://h'))).toMatchObject({
      commandTimeout: 1_000,
      maxRetriesPerRequest: 1,
    });
  });

  it('checks the TLS certificate against the host name', () => {
    expect(connectionOptions(config('rediss://redis.example')).tls).toEqual({ servername: 'redis.example' });
  });
});
