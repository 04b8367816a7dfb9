import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { createLogger } from '../log.js';
import { Metrics } from '../metrics.js';
import { buildRuntime } from '../runtime.js';
import { newContext } from '../server/new-context.js';
import { createRecordMetricsStage } from './record-metrics.js';

// "none" is a valid tenant id; requests without a tenant are "_none", which no id can be.
const TENANTS = ['a', 'b', 'c', 'none'];
const runtime = buildRuntime(
  parseConfig({
    upstream: { url: 'http://127.0.0.1:1' },
    plans: { p: { models: { default: 'm1' } } },
    tenants: TENANTS.map((id) => ({ id, plan: 'p', api_key_sha256: [] })),
  }),
);

function setUp(maxTenants: number) {
  const metrics = new Metrics(maxTenants);
  const logger = createLogger('info', new Writable({ write: (_c, _e, done) => done() }));
  const stage = createRecordMetricsStage({ metrics, logger });
  const end = (tenant: string | undefined, model: string, status: number) => {
    const req = {
      headers: {},
      socket: { remoteAddress: '127.0.0.1' },
      method: 'POST',
    } as unknown as IncomingMessage;
    const ctx: RequestContext = newContext(req, runtime, { path: '/v1/chat/completions', query: '' });
    ctx.tenant = tenant === undefined ? undefined : runtime.tenants.get(tenant);
    ctx.model = model;
    ctx.status = status;
    ctx.durationMs = 5;
    ctx.provenance = 'reported';
    ctx.usage = { input: 10, output: 2 };
    ctx.costUsd = 0.001;
    stage.onResponseEnd?.(ctx);
  };
  /** A sample's value, by the exact label set it is exported with (0 when there is no such series). */
  const value = async (name: string, labels: Record<string, string>) => {
    const text = await metrics.registry.metrics();
    const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    for (const line of text.split('\n')) {
      const match = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
      if (!match || match[1] !== name) continue;
      const have = match[2] ? match[2].split(',') : [];
      if (have.length === wanted.length && wanted.every((pair) => have.includes(pair)))
        return Number(match[3]);
    }
    return 0;
  };
  return { metrics, end, value };
}

describe('record-metrics', () => {
  it('counts each tenant, model and status apart when a tenant switches between them', async () => {
    const { end, value } = setUp(100);
    const sequence: [string, number][] = [
      ['m1', 200],
      ['m2', 200],
      ['m1', 429],
      ['m1', 200],
      ['m2', 500],
      ['m2', 500],
      ['m1', 200],
    ];
    for (const [model, status] of sequence) end('a', model, status);
    end('b', 'm1', 200);
    const requests = (tenant: string, model: string, status: string) =>
      value('lanekeeper_requests_total', { tenant, model, status });
    expect(await requests('a', 'm1', '200')).toBe(3);
    expect(await requests('a', 'm2', '200')).toBe(1);
    expect(await requests('a', 'm1', '429')).toBe(1);
    expect(await requests('a', 'm2', '500')).toBe(2);
    expect(await requests('b', 'm1', '200')).toBe(1);
    expect(await requests('b', 'm2', '500')).toBe(0);
    expect(await value('lanekeeper_tokens_total', { tenant: 'a', model: 'm2', kind: 'input' })).toBe(30);
    expect(await value('lanekeeper_request_duration_seconds_count', { tenant: 'a' })).toBe(7);
  });

  it('keeps the tenant bound: past it every request is _other and counted as an overflow', async () => {
    const { end, value } = setUp(2);
    end('a', 'm1', 200);
    end('b', 'm1', 200);
    end('c', 'm1', 200);
    end('c', 'm1', 200);
    end('a', 'm1', 200);
    expect(await value('lanekeeper_requests_total', { tenant: 'a', model: 'm1', status: '200' })).toBe(2);
    expect(await value('lanekeeper_requests_total', { tenant: 'c', model: 'm1', status: '200' })).toBe(0);
    expect(await value('lanekeeper_requests_total', { tenant: '_other', model: 'm1', status: '200' })).toBe(
      2,
    );
    expect(await value('lanekeeper_tenant_label_overflow_total', {})).toBe(2);
  });

  it('keeps a tenant called "none" apart from the requests that had no tenant', async () => {
    const { end, value } = setUp(2);
    end(undefined, 'm1', 401); // series "_none", for no tenant
    end('none', 'm1', 200);
    end('none', 'm1', 401);
    end('b', 'm1', 200);
    end('c', 'm1', 200); // series "_other"
    expect(await value('lanekeeper_tenant_label_overflow_total', {})).toBe(1);
    expect(await value('lanekeeper_requests_total', { tenant: 'none', model: 'm1', status: '200' })).toBe(1);
    expect(await value('lanekeeper_requests_total', { tenant: 'none', model: 'm1', status: '401' })).toBe(1);
    expect(await value('lanekeeper_requests_total', { tenant: '_none', model: 'm1', status: '401' })).toBe(1);
  });
});
