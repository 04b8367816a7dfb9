/**
 * The control plane's configuration, read once from the environment and validated with
 * zod. Every problem is reported at once, named by its variable, so an operator fixes a
 * deployment in one pass instead of one restart per mistake.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { ControlPlaneConfigError, type EnvProblem } from './errors.js';
import { parseCollectionTemplates } from './stores/qdrant.js';
import type { CollectionTemplate } from './stores/vector-store.js';

const token = z.string().min(16, { message: 'must be at least 16 characters (use a long random secret)' });

const envSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, { message: 'expected a postgres:// URL' })
    .optional(),
  LANEKEEPER_DATA_DIR: z.string().min(1).default('.lanekeeper/data'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, { message: 'expected a redis:// or rediss:// URL' })
    .optional(),
  QDRANT_URL: z.url({ protocol: /^https?$/ }).optional(),
  // Sent as a header: a control character would only fail later, in the client's constructor.
  QDRANT_API_KEY: z
    .string()
    .regex(/^[\x21-\x7e]+$/, { message: 'must be printable ASCII without spaces (it is sent as a header)' })
    .optional(),
  LANEKEEPER_ADMIN_TOKEN: token,
  LANEKEEPER_PROXY_TOKEN: token,
  LANEKEEPER_PROXY_TOKEN_PREVIOUS: token.optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  HOST: z.string().min(1).default('0.0.0.0'),
  LANEKEEPER_KEY_PREFIX: z.string().default('lk:'),
  LANEKEEPER_USAGE_STREAM: z.string().min(1).default('usage'),
  LANEKEEPER_COLLECTION_TEMPLATES: z.string().optional(),
  LANEKEEPER_VECTOR_MODE: z.enum(['collection', 'partition']).default('collection'),
  LANEKEEPER_LEDGER_GROUP: z.string().min(1).default('lanekeeper-ledger'),
  LANEKEEPER_LEDGER_CONSUMER: z.string().min(1).optional(),
  LANEKEEPER_LEDGER_BATCH: z.coerce.number().int().min(1).max(10_000).default(500),
  LANEKEEPER_LEDGER_CLAIM_IDLE_MS: z.coerce.number().int().min(0).default(60_000),
  LANEKEEPER_LEDGER_ENABLED: z.enum(['true', 'false']).default('true'),
  LANEKEEPER_ERASURE_RETAIN_BILLING: z.enum(['true', 'false']).default('false'),
  LANEKEEPER_ERASURE_PROPAGATION_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
  LANEKEEPER_ERASURE_RESWEEP_MS: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
  LANEKEEPER_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  LANEKEEPER_CONSOLE_SECURE_COOKIE: z
    .enum(['auto', 'true', 'false'], { message: 'expected auto, true or false' })
    .default('auto'),
  LANEKEEPER_TRUSTED_PROXIES: z
    .string()
    .optional()
    .transform((value) => value?.split(',').map((entry) => entry.trim()))
    .refine((entries) => entries === undefined || (entries.length <= 64 && entries.every(isAddressOrCidr)), {
      message: 'expected up to 64 comma-separated IP addresses or CIDR ranges (10.0.0.0/8, fd00::/8)',
    }),
  LANEKEEPER_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  /** The most a request may take to arrive whole, headers and body (node's requestTimeout). */
  LANEKEEPER_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1_000).max(600_000).default(30_000),
  /** Open connections beyond which new ones are closed at once; default from the open-files limit. */
  LANEKEEPER_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).optional(),
  /**
   * The model ids the proxies' upstreams serve, as comma-separated ids or globs (the union of
   * their `upstreams.*.models`). When set, a plan or override naming a model none matches is
   * refused, as the proxies would refuse it.
   */
  LANEKEEPER_UPSTREAM_MODELS: z
    .string()
    .optional()
    .transform((value) =>
      value === undefined || value.trim() === ''
        ? undefined
        : value
            .split(',')
            .map((glob) => glob.trim())
            .filter(Boolean),
    )
    .refine((globs) => globs === undefined || globs.every((g) => /^[^\s]{1,200}$/.test(g)), {
      message: 'expected comma-separated model ids or globs (*), without spaces',
    }),
});

/** An IPv4 or IPv6 address, with an optional prefix length that fits it. */
function isAddressOrCidr(entry: string): boolean {
  const match = /^([0-9A-Fa-f:.]{2,45})(?:\/(\d{1,3}))?$/.exec(entry);
  if (!match) return false;
  const family = isIP(match[1]!);
  if (family === 0) return false;
  return match[2] === undefined || Number(match[2]) <= (family === 4 ? 32 : 128);
}

/** The validated settings; names follow their meaning, not their env var. */
export interface ControlPlaneConfig {
  /** PostgreSQL; undefined runs the embedded database (PGlite) in `dataDir`. */
  databaseUrl?: string;
  /** Where the embedded database keeps its files (only without DATABASE_URL). */
  dataDir: string;
  /**
   * Undefined runs without Redis: config changes reach proxies by their poll, and proxies post
   * usage to POST /v1/usage-events instead of the Redis stream.
   */
  redisUrl?: string;
  qdrant?: { url: string; apiKey?: string };
  adminToken: string;
  proxyToken: string;
  /**
   * Also taken while the proxies move to a new proxy token: with one token, its rotation
   * always left a window where some proxies were refused their config (found by review).
   */
  previousProxyToken?: string;
  port: number;
  host: string;
  /** Must equal the proxies' store.key_prefix: keys, the usage stream and the config channel share it. */
  keyPrefix: string;
  /** The proxies' store.usage_stream; the full stream key is keyPrefix + usageStream. */
  usageStream: string;
  collectionTemplates: CollectionTemplate[];
  vectorMode: 'collection' | 'partition';
  /** Globs of the model ids the proxies' upstreams serve; plans naming others are refused. */
  upstreamModels?: readonly string[];
  ledger: {
    enabled: boolean;
    group: string;
    /** Stable per replica, so a restarted replica re-reads its own pending entries first. */
    consumer: string;
    batch: number;
    /** Entries pending longer than this on another consumer are claimed (that consumer died). */
    claimIdleMs: number;
  };
  /** Erasure pseudonymises usage rows instead of deleting them (billing records kept). */
  retainBillingOnErasure: boolean;
  /**
   * Erasure timing: how long DELETE waits after hiding the tenant before it sweeps (proxies
   * apply a config change within a second), and when the automatic second sweep runs.
   */
  erasure: { propagationMs: number; resweepMs: number };
  /** How long SIGTERM waits for requests in flight before cutting them (and the database's). */
  shutdownGraceMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** How long a request may take to arrive whole; a client trickling its body is cut then. */
  requestTimeoutMs: number;
  /** The open-connection cap; undefined derives it from the open-files limit (http/listener.ts). */
  maxConnections?: number;
  /**
   * The console's cookie: `auto` marks it Secure when the request reached this process over
   * HTTPS; `always` for a console served over HTTPS by a TLS-terminating proxy in front (the
   * browser is then also on https://, which the origin check accepts); `never` (local HTTP only).
   * X-Forwarded-Proto is never read: any client could send it.
   */
  consoleSecureCookie: 'auto' | 'always' | 'never';
  /**
   * The reverse proxies (addresses or CIDR ranges) in front of the control plane. Only from
   * these are X-Forwarded-For, -Proto and -Host believed, so the wrong-token throttle counts
   * each client behind an ingress on its own instead of one address for all of them (where one
   * client's guesses would lock every operator out). Unset: no forwarded header is read.
   */
  trustedProxies?: readonly string[];
}

/** Reads and validates the environment; throws ControlPlaneConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ControlPlaneConfig {
  // Empty strings mean "unset" (a common shell and compose idiom).
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  const problems: EnvProblem[] = parsed.success
    ? []
    : parsed.error.issues.map((issue) => {
        const variable = issue.path.map(String).join('.');
        return { variable, message: cleaned[variable] === undefined ? 'is required' : issue.message };
      });
  let templates: CollectionTemplate[] = [];
  try {
    templates = parseCollectionTemplates(cleaned.LANEKEEPER_COLLECTION_TEMPLATES);
  } catch (error) {
    if (!(error instanceof ControlPlaneConfigError)) throw error;
    problems.push(...error.problems);
  }
  for (const variable of ['LANEKEEPER_PROXY_TOKEN', 'LANEKEEPER_PROXY_TOKEN_PREVIOUS'] as const) {
    if (parsed.success && parsed.data[variable] === parsed.data.LANEKEEPER_ADMIN_TOKEN) {
      problems.push({
        variable,
        message: 'must differ from LANEKEEPER_ADMIN_TOKEN: proxies must not hold admin rights',
      });
    }
  }
  if (!parsed.success || problems.length > 0) throw new ControlPlaneConfigError(problems);
  const e = parsed.data;
  return {
    ...(e.DATABASE_URL ? { databaseUrl: e.DATABASE_URL } : {}),
    dataDir: e.LANEKEEPER_DATA_DIR,
    ...(e.REDIS_URL ? { redisUrl: e.REDIS_URL } : {}),
    ...(e.QDRANT_URL ? { qdrant: { url: e.QDRANT_URL, apiKey: e.QDRANT_API_KEY } } : {}),
    adminToken: e.LANEKEEPER_ADMIN_TOKEN,
    proxyToken: e.LANEKEEPER_PROXY_TOKEN,
    ...(e.LANEKEEPER_PROXY_TOKEN_PREVIOUS ? { previousProxyToken: e.LANEKEEPER_PROXY_TOKEN_PREVIOUS } : {}),
    port: e.PORT,
    host: e.HOST,
    keyPrefix: e.LANEKEEPER_KEY_PREFIX,
    usageStream: e.LANEKEEPER_USAGE_STREAM,
    collectionTemplates: templates,
    vectorMode: e.LANEKEEPER_VECTOR_MODE,
    ledger: {
      enabled: e.LANEKEEPER_LEDGER_ENABLED === 'true',
      group: e.LANEKEEPER_LEDGER_GROUP,
      consumer: e.LANEKEEPER_LEDGER_CONSUMER ?? `ledger-${process.env.HOSTNAME ?? 'local'}`,
      batch: e.LANEKEEPER_LEDGER_BATCH,
      claimIdleMs: e.LANEKEEPER_LEDGER_CLAIM_IDLE_MS,
    },
    retainBillingOnErasure: e.LANEKEEPER_ERASURE_RETAIN_BILLING === 'true',
    erasure: {
      propagationMs: e.LANEKEEPER_ERASURE_PROPAGATION_MS,
      resweepMs: e.LANEKEEPER_ERASURE_RESWEEP_MS,
    },
    shutdownGraceMs: e.LANEKEEPER_SHUTDOWN_GRACE_MS,
    logLevel: e.LANEKEEPER_LOG_LEVEL,
    requestTimeoutMs: e.LANEKEEPER_REQUEST_TIMEOUT_MS,
    ...(e.LANEKEEPER_MAX_CONNECTIONS ? { maxConnections: e.LANEKEEPER_MAX_CONNECTIONS } : {}),
    consoleSecureCookie: ({ auto: 'auto', true: 'always', false: 'never' } as const)[
      e.LANEKEEPER_CONSOLE_SECURE_COOKIE
    ],
    ...(e.LANEKEEPER_UPSTREAM_MODELS ? { upstreamModels: e.LANEKEEPER_UPSTREAM_MODELS } : {}),
    ...(e.LANEKEEPER_TRUSTED_PROXIES ? { trustedProxies: e.LANEKEEPER_TRUSTED_PROXIES } : {}),
  };
}

/** `npx lanekeeper migrate` needs only the database. */
export function loadMigrateConfig(env: NodeJS.ProcessEnv = process.env): { databaseUrl: string } {
  const url = env.DATABASE_URL;
  if (!url || !/^postgres(ql)?:\/\//.test(url)) {
    throw new ControlPlaneConfigError([
      { variable: 'DATABASE_URL', message: url ? 'expected a postgres:// URL' : 'is required' },
    ]);
  }
  return { databaseUrl: url };
}
