/**
 * The Lanekeeper config the benchmark runs: what a real deployment would carry, so that the
 * measured path is the real one. API-key identity, a plan whose `fast` alias is rewritten to
 * the upstream id (so the body is edited and re-serialised), a context bound (so the output
 * cap is set), rate limits on every dimension but high enough never to refuse, a price for
 * the model (so cost is computed), metrics and the info-level access log on.
 */
import { createHash } from 'node:crypto';

/** The key the load generator presents; only its sha256 is in the config. */
export const BENCH_API_KEY = 'lk-bench-key-0123456789abcdef';
export const BENCH_TENANT = 'bench-tenant';
/** A second tenant, for the burst-then-pause scenario: its burst must not slow anyone after. */
export const BURST_API_KEY = 'lk-bench-burst-key-0123456789abcdef';
export const BURST_TENANT = 'bench-burst';

/**
 * The key of tenant `i` of a many-tenant config: `${BENCH_API_KEY}-${i}`. The wrk script and
 * the paced client build the same names (LK_BENCH_KEYS), so only the count crosses over.
 */
export function benchKey(i: number): string {
  return `${BENCH_API_KEY}-${i}`;
}

function sha256(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The chat request every scenario sends; `stream` picks JSON or SSE. */
export function chatBody(stream: boolean): string {
  return JSON.stringify({
    model: 'fast',
    messages: [
      { role: 'system', content: 'You are a concise assistant.' },
      { role: 'user', content: 'Give me twenty words about proxies.' },
    ],
    temperature: 0.2,
    stream,
  });
}

export interface BenchConfigOptions {
  listenPort: number;
  adminPort: number;
  upstreamUrl: string;
  /** A Redis URL and a key prefix for Redis mode; memory mode when absent. */
  redis?: { url: string; keyPrefix: string };
  /**
   * Serve the model from an Anthropic-dialect upstream, so every request is translated
   * (OpenAI chat completions to Anthropic Messages and back): the translation's cost.
   */
  translated?: boolean;
  /**
   * Tenants in the config besides the two above (`bench-tenant-<i>`, key `benchKey(i)`), for
   * the many-tenant scenario: what a SaaS deployment carries, with traffic spread over some.
   */
  tenants?: number;
}

/** The raw config object (written as JSON, which is YAML, for the CLI). */
export function benchConfig(options: BenchConfigOptions): Record<string, unknown> {
  return {
    listen: `127.0.0.1:${options.listenPort}`,
    admin_listen: `127.0.0.1:${options.adminPort}`,
    ...(options.translated
      ? {
          upstreams: {
            anthropic: {
              url: options.upstreamUrl,
              dialect: 'anthropic',
              headers: { 'x-api-key': 'sk-upstream-bench', 'anthropic-version': '2023-06-01' },
              models: ['*'],
            },
          },
        }
      : {
          upstream: {
            url: options.upstreamUrl,
            dialect: 'auto',
            headers: { authorization: 'Bearer sk-upstream-bench' },
          },
        }),
    identity: { sources: ['api_key'] },
    store: options.redis ? { redis: options.redis.url, key_prefix: options.redis.keyPrefix } : 'memory',
    // Above the many-tenant scenario's 1,000 active tenants: each gets its own series, the dear case.
    metrics: { max_tenants: 2000 },
    log: { level: 'info' },
    pricing: {
      'gpt-4o-mini': { input: 0.15, output: 0.6, cached_input: 0.075 },
    },
    plans: {
      bench: {
        models: { default: 'gpt-4o-mini', fast: 'gpt-4o-mini' },
        rate_limits: {
          requests_per_minute: 100_000_000,
          tokens_per_hour: 1_000_000_000_000,
          max_concurrent: 100_000,
        },
        max_context: 128_000,
        features: ['basic_chat'],
      },
    },
    tenants: [
      { id: BENCH_TENANT, plan: 'bench', api_key_sha256: [sha256(BENCH_API_KEY)] },
      { id: BURST_TENANT, plan: 'bench', api_key_sha256: [sha256(BURST_API_KEY)] },
      ...Array.from({ length: options.tenants ?? 0 }, (_, i) => ({
        id: `bench-tenant-${i}`,
        plan: 'bench',
        api_key_sha256: [sha256(benchKey(i))],
      })),
    ],
  };
}
