/**
 * The retrofit, end to end: the unchanged support bot (official openai SDK) talks to a real
 * Lanekeeper proxy, which fronts a fake OpenAI-compatible upstream. Two customers of the
 * bot use it; the proxy tells them apart by the key the bot forwards, applies each one's
 * plan, and meters each one's usage and cost separately. The upstream never sees a
 * customer's key, only the provider key from the proxy config.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../proxy/src/identity/credentials.js';
import { startProxy, type RunningProxy } from '../../proxy/src/main.js';
import {
  chatCompletion,
  startFakeUpstream,
  type FakeUpstream,
} from '../../proxy/test/helpers/fake-upstream.js';
import { metricValue } from '../../proxy/test/helpers/harness.js';
import { createSupportBot, type Answer } from './support-bot.js';

const ADMIN_TOKEN = 'retrofit-admin-token-0123456789';

const ACME_KEY = 'lk_acme_support_bot_0123456789abcdef';
const GLOBEX_KEY = 'lk_globex_support_bot_0123456789abcd';
const PROVIDER_KEY = 'sk-provider-secret-held-by-lanekeeper';

interface HourUsage {
  tenant: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  estimated_cost: number;
}

let upstream: FakeUpstream;
let proxy: RunningProxy;
let bot: Server;
let botUrl = '';

beforeAll(async () => {
  // The upstream answers with the model it was asked for and fixed usage, so costs are exact.
  upstream = await startFakeUpstream((req) => ({
    kind: 'json',
    body: chatCompletion(
      (req.body as { model: string }).model,
      'Have you tried turning it off and on again?',
      {
        prompt_tokens: 1000,
        completion_tokens: 500,
        total_tokens: 1500,
      },
    ),
  }));
  proxy = await startProxy({
    config: {
      listen: '127.0.0.1:0',
      admin_listen: '127.0.0.1:0',
      admin_token: ADMIN_TOKEN,
      upstream: { url: upstream.url, headers: { authorization: `Bearer ${PROVIDER_KEY}` } },
      log: { level: 'silent' },
      // USD per 1M tokens (test prices, not a provider's).
      pricing: {
        'gpt-4o-mini': { input: 1, output: 2 },
        'gpt-4o': { input: 10, output: 20 },
      },
      plans: {
        // The bot always asks for gpt-4o-mini: the pro plan upgrades it, the free plan keeps it.
        free: { models: { default: 'gpt-4o-mini' }, rate_limits: { requests_per_minute: 100 } },
        pro: { models: { default: 'gpt-4o', 'gpt-4o-mini': 'gpt-4o' } },
      },
      tenants: [
        { id: 'acme', plan: 'pro', api_key_sha256: [sha256Hex(ACME_KEY)] },
        { id: 'globex', plan: 'free', api_key_sha256: [sha256Hex(GLOBEX_KEY)] },
      ],
    },
  });
  bot = createSupportBot({ baseURL: `${proxy.url}/v1` });
  await new Promise<void>((resolve) => bot.listen(0, '127.0.0.1', resolve));
  botUrl = `http://127.0.0.1:${(bot.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => bot?.close(() => resolve()));
  await proxy?.close(1_000);
  await upstream?.close();
});

async function ask(
  customerKey: string,
  question: string,
): Promise<{ status: number; body: Answer & { error?: string } }> {
  const response = await fetch(`${botUrl}/ask`, {
    method: 'POST',
    headers: { authorization: `Bearer ${customerKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ question }),
  });
  return { status: response.status, body: (await response.json()) as Answer & { error?: string } };
}

/** The proxy's current-hour usage for a tenant, once `requests` of them are metered (metering follows the response). */
async function usageOnce(tenant: string, requests: number): Promise<HourUsage> {
  let usage: HourUsage | undefined;
  for (let i = 0; i < 200; i++) {
    usage = (await (
      await fetch(`${proxy.adminUrl}/v1/usage/${tenant}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
    ).json()) as HourUsage;
    if (usage.requests >= requests) return usage;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${tenant}: expected ${requests} metered requests, have ${JSON.stringify(usage)}`);
}

describe('the retrofitted support bot behind a Lanekeeper proxy', () => {
  it('keeps working for both customers, each on its own plan', async () => {
    const acme = [await ask(ACME_KEY, 'My printer is on fire'), await ask(ACME_KEY, 'Still on fire')];
    const globex = await ask(GLOBEX_KEY, 'How do I reset my password?');
    for (const reply of [...acme, globex]) {
      expect(reply.status).toBe(200);
      expect(reply.body.answer).toBe('Have you tried turning it off and on again?');
    }
    // Same bot code, same requested model; the plan decides what runs upstream.
    expect(acme.map((r) => r.body.model)).toEqual(['gpt-4o', 'gpt-4o']);
    expect(globex.body.model).toBe('gpt-4o-mini');
  });

  it('meters each tenant separately: requests, tokens and cost', async () => {
    const acme = await usageOnce('acme', 2);
    const globex = await usageOnce('globex', 1);
    expect(acme).toMatchObject({ tenant: 'acme', requests: 2, input_tokens: 2000, output_tokens: 1000 });
    expect(globex).toMatchObject({ tenant: 'globex', requests: 1, input_tokens: 1000, output_tokens: 500 });
    // acme: 2 x (1000 x $10 + 500 x $20) / 1M = $0.04; globex: (1000 x $1 + 500 x $2) / 1M = $0.002.
    expect(acme.estimated_cost).toBeCloseTo(0.04, 10);
    expect(globex.estimated_cost).toBeCloseTo(0.002, 10);
  });

  it('exports per-tenant cost and requests to Prometheus', async () => {
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    expect(metricValue(text, 'lanekeeper_cost_usd_total', { tenant: 'acme', model: 'gpt-4o' })).toBeCloseTo(
      0.04,
      10,
    );
    expect(
      metricValue(text, 'lanekeeper_cost_usd_total', { tenant: 'globex', model: 'gpt-4o-mini' }),
    ).toBeCloseTo(0.002, 10);
    expect(metricValue(text, 'lanekeeper_requests_total', { tenant: 'acme', status: '200' })).toBe(2);
    expect(metricValue(text, 'lanekeeper_requests_total', { tenant: 'globex', status: '200' })).toBe(1);
  });

  it('never lets a customer key reach the provider, and tells the backend who is calling', () => {
    const seen = upstream.received.filter((r) => r.path === '/v1/chat/completions');
    expect(seen).toHaveLength(3);
    for (const request of seen) {
      expect(request.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
      expect(request.raw).not.toContain(ACME_KEY);
      expect(request.raw).not.toContain(GLOBEX_KEY);
    }
    expect(seen.map((r) => [r.headers['x-tenant-id'], r.headers['x-tenant-plan']])).toEqual([
      ['acme', 'pro'],
      ['acme', 'pro'],
      ['globex', 'free'],
    ]);
  });

  it('passes the proxy refusal of an unknown key through the SDK to the bot caller', async () => {
    const reply = await ask('lk_not_a_customer_key_000000000000', 'Hello?');
    expect(reply.status).toBe(401);
    expect(upstream.received.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(3);
  });
});
