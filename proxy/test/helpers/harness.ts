/**
 * Starts a real proxy (memory store unless told otherwise) in front of a fake upstream, with
 * a small tenant set, and captures its JSON log lines for assertions.
 */
import { sha256Hex } from '../../src/identity/credentials.js';
import { createLogger } from '../../src/log.js';
import { startProxy, type RunningProxy, type StartOptions } from '../../src/main.js';
import { logLines } from '../../../test/helpers/log-lines.js';
import { startFakeUpstream, type FakeUpstream, type Reply, type Received } from './fake-upstream.js';

export const KEYS = {
  free: 'lk_test_free_0123456789abcdef',
  pro: 'lk_test_pro_0123456789abcdef',
  pro2: 'lk_test_pro2_0123456789abcdef',
  suspended: 'lk_test_suspended_0123456789',
} as const;

/** The admin_token of the harness's proxies, for /v1/usage/{tenant}. */
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const ADMIN_AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` } as const;

/** A config with plans free/pro and tenants acme (free), globex (pro), hooli (pro), umbrella (suspended). */
export function baseConfig(upstreamUrl: string): Record<string, unknown> {
  return {
    listen: '127.0.0.1:0',
    admin_listen: '127.0.0.1:0',
    admin_token: ADMIN_TOKEN,
    upstream: {
      url: upstreamUrl,
      headers: { authorization: 'Bearer sk-upstream-secret' },
      timeout_ms: 5_000,
    },
    log: { level: 'info' },
    pricing: {
      'small-model': { input: 1, output: 2 },
      'big-model': { input: 10, output: 30, cached_input: 5 },
    },
    plans: {
      free: {
        models: { default: 'small-model' },
        rate_limits: { requests_per_minute: 100 },
        max_context: 4096,
        features: ['basic_chat'],
        custom_prompts: { system: 'You are the ACME free-tier assistant.' },
      },
      pro: {
        models: { default: 'small-model', smart: 'big-model' },
        rate_limits: {},
        max_context: 128000,
        features: ['rag', 'image_analysis'],
      },
    },
    tenants: [
      { id: 'acme', plan: 'free', api_key_sha256: [sha256Hex(KEYS.free)] },
      { id: 'globex', plan: 'pro', api_key_sha256: [sha256Hex(KEYS.pro)] },
      { id: 'hooli', plan: 'pro', api_key_sha256: [sha256Hex(KEYS.pro2)] },
      { id: 'umbrella', plan: 'pro', status: 'suspended', api_key_sha256: [sha256Hex(KEYS.suspended)] },
    ],
  };
}

export interface Harness {
  proxy: RunningProxy;
  upstream: FakeUpstream;
  logs: Record<string, unknown>[];
  /** The access-log lines (msg "request"). */
  accessLogs(): Record<string, unknown>[];
  lastReceived(): Received;
  /** Waits until the response-end work of `n` requests has been logged (metering is after the response). */
  settled(n: number): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(
  options: {
    reply?: Reply | ((req: Received) => Reply);
    config?: (base: Record<string, unknown>) => Record<string, unknown>;
    /** Start options beyond the config (trace export delay, environment). */
    start?: Pick<StartOptions, 'traceExportDelayMs' | 'traceExportOutage' | 'env'>;
  } = {},
): Promise<Harness> {
  const upstream = await startFakeUpstream(options.reply);
  const { lines: logs, stream: sink } = logLines();
  // The proxy's own logger (its shape and redaction), at debug, into the test's sink.
  const logger = createLogger('debug', sink);
  const base = baseConfig(upstream.url);
  const proxy = await startProxy({
    config: options.config ? options.config(base) : base,
    logger,
    env: {},
    ...options.start,
  });
  const accessLogs = () => logs.filter((l) => l.msg === 'request');
  return {
    proxy,
    upstream,
    logs,
    accessLogs,
    lastReceived() {
      const last = upstream.received.at(-1);
      if (!last) throw new Error('the upstream received nothing');
      return last;
    },
    async settled(n) {
      for (let i = 0; i < 500 && accessLogs().length < n; i++) await new Promise((r) => setTimeout(r, 10));
      if (accessLogs().length < n)
        throw new Error(`expected ${n} access-log lines, saw ${accessLogs().length}`);
    },
    async close() {
      await proxy.close(1_000);
      await upstream.close();
    },
  };
}

/**
 * The harness's config with its one upstream split in two, each with its own key: "a", the
 * harness's fake upstream (models a-*), and "b" at `bUrl` (models b-*); `overrides` are laid
 * over each.
 */
export function withUpstreamsAB(
  base: Record<string, unknown>,
  bUrl: string,
  overrides: { a?: Record<string, unknown>; b?: Record<string, unknown> } = {},
): Record<string, unknown> {
  const { upstream: single, ...rest } = base;
  return {
    ...rest,
    upstreams: {
      a: {
        ...(single as Record<string, unknown>),
        dialect: 'openai',
        headers: { authorization: 'Bearer sk-a' },
        models: ['a-*'],
        ...overrides.a,
      },
      b: {
        url: bUrl,
        dialect: 'openai',
        headers: { authorization: 'Bearer sk-b' },
        models: ['b-*'],
        ...overrides.b,
      },
    },
  };
}

/** Reads one metric sample's value from Prometheus text (undefined when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

/** The access-log line of request `id`, once its response-end work has logged it (within `waitMs`). */
export async function accessLineOf(h: Harness, id: string, waitMs: number): Promise<Record<string, unknown>> {
  for (let i = 0; i < waitMs / 10; i++) {
    const line = h.accessLogs().find((l) => l.request_id === id);
    if (line) return line;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no access line for ${id}`);
}
