/**
 * The proxy's configuration contract: one zod schema for the YAML file (and for the
 * snapshot the control plane serves), parsed once, checked across fields, then frozen.
 * Every problem is reported with its YAML path so an operator can fix them all at once.
 */
import {
  modelChain,
  namedRecord,
  planSchema,
  priceTableSchema,
  telemetryConfigSchema,
  tenantSchema,
} from '@lanekeeper/contract';
import { z } from 'zod';
import { dialectByName } from '../dialects/index.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { readPublicKey } from '../identity/public-keys.js';
import { headerNameSchema, headerValueSchema } from './header-fields.js';
import {
  SINGLE_UPSTREAM,
  routeModel,
  unroutableModels,
  upstreamNameSchema,
  upstreamSchema,
  type UpstreamConfig,
} from './upstreams.js';

// Plans, tenants and prices are the contract shared with the control plane; the proxy's
// own modules keep importing them from here.
export {
  TENANT_ID_PATTERN,
  type PlanConfig,
  type Price,
  type RateLimits,
  type TenantConfig,
} from '@lanekeeper/contract';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, {
  message: 'expected "host:port", for example "0.0.0.0:8080"',
});

const positiveInt = z.number().int().positive();

/** Dotted paths into a custom service's JSON where each token count lives. */
const usagePathsSchema = z.strictObject({
  input: z.string().min(1).optional(),
  output: z.string().min(1).optional(),
  cached_input: z.string().min(1).optional(),
  cache_write: z.string().min(1).optional(),
  reasoning: z.string().min(1).optional(),
});

const BUILT_IN_DIALECTS = ['auto', 'openai', 'vllm', 'anthropic', 'gemini', 'ollama'];

/** A team's own AI service, metered and limited without code (see docs/dialects.md). */
const customDialectSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_-]*$/)
    .refine((name) => !BUILT_IN_DIALECTS.includes(name), {
      message: 'this name is taken by a built-in dialect',
    }),
  match: z.strictObject({
    method: z
      .string()
      .default('POST')
      .transform((m) => m.toUpperCase()),
    path: z.string().min(1),
  }),
  model: z.string().optional(),
  stream: z
    .strictObject({
      flag: z.string().optional(),
      format: z.enum(['sse', 'ndjson']).default('sse'),
      event: z.string().optional(),
      usage: usagePathsSchema.prefault({}),
      text: z.string().optional(),
      model: z.string().optional(),
    })
    .optional(),
  usage: usagePathsSchema.prefault({}),
  system_prompt: z.string().optional(),
  max_output: z.string().optional(),
  error: z.string().optional(),
  error_style: z.enum(['openai', 'anthropic', 'gemini', 'ollama']).default('openai'),
});

const identitySchema = z.strictObject({
  sources: z
    .array(z.enum(['api_key', 'jwt', 'header', 'query', 'subdomain']))
    .min(1)
    .default(['api_key']),
  jwt: z
    .strictObject({
      // http(s) only, and no user:password: fetch refuses a URL with credentials on every
      // call, and would print them in the error each time.
      jwks_url: z
        .url({ protocol: /^https?$/ })
        .refine((url) => !/^[a-z]+:\/\/[^/?#]*@/i.test(url), {
          message: 'jwks_url must not carry credentials (user:password@)',
        })
        .optional(),
      public_key: z.string().optional(),
      issuer: z.string().optional(),
      audience: z.string().optional(),
      tenant_claim: z.string().default('tenant'),
      algorithms: z.array(z.string()).min(1).optional(),
      clock_tolerance_s: z.number().nonnegative().default(5),
      /**
       * Refuse a token without `exp`: one leaked from a log or a browser would otherwise
       * admit its tenant forever. Off only for an IdP that issues none, and then revocation
       * is only a key rotation.
       */
      require_exp: z.boolean().default(true),
      /** Least time between JWKS re-fetches for unknown key ids; bounds what random kids can cost the IdP. */
      jwks_cooldown_ms: z.number().int().nonnegative().default(30_000),
    })
    .refine((j) => j.jwks_url !== undefined || j.public_key !== undefined, {
      message: 'identity.jwt needs jwks_url or public_key',
    })
    .optional(),
  header: headerNameSchema.toLowerCase().default('x-tenant-id'),
  query: z.string().default('tenant'),
  /** Without base_domain, the first label of a Host with three or more labels names the tenant. */
  subdomain: z.strictObject({ base_domain: z.string().min(1) }).optional(),
  trust_unauthenticated: z.boolean().default(false),
  inject_headers: z
    .strictObject({
      tenant: headerNameSchema.toLowerCase().default('x-tenant-id'),
      plan: headerNameSchema.toLowerCase().default('x-tenant-plan'),
    })
    .prefault({}),
});

/**
 * When failed Redis calls mean Redis is down (store/failure-detector.ts). Absent: the
 * defaults there (5 in a row, or 50% of at least 20 calls in 10 s).
 */
const failureDetectorSchema = z.strictObject({
  consecutive_failures: positiveInt.max(10_000).default(5),
  failure_ratio: z.number().gt(0).max(1).default(0.5),
  window_ms: positiveInt.min(100).max(3_600_000).default(10_000),
  min_calls: positiveInt.max(1_000_000).default(20),
});

const redisStoreSchema = z.strictObject({
  redis: z.string().regex(/^rediss?:\/\//, { message: 'expected a redis:// or rediss:// URL' }),
  key_prefix: z.string().default('lk:'),
  cluster: z.boolean().default(false),
  /** Per-call deadline, in event-loop time (lag does not count; store/redis-deadlines.ts). */
  timeout_ms: positiveInt.default(250),
  failure_detector: failureDetectorSchema.optional(),
  usage_stream: z.string().default('usage'),
  usage_stream_maxlen: positiveInt.default(1_000_000),
  retention_hours: positiveInt.default(48),
});

const configObjectSchema = z.strictObject({
  listen: hostPort.default('0.0.0.0:8080'),
  admin_listen: hostPort.default('127.0.0.1:9464'),
  /** One backend for every model (see config/upstreams.ts); or `upstreams`, never both. */
  upstream: upstreamSchema.optional(),
  /** Several backends, each serving the model ids its `models` match, the first match winning. */
  upstreams: z.record(upstreamNameSchema, upstreamSchema).optional(),
  /**
   * Bearer token for the admin listener's /v1/usage/{tenant}; without it that route answers
   * 401. Usually `${LANEKEEPER_ADMIN_TOKEN}`.
   */
  admin_token: z
    .string()
    .min(16, { message: 'use at least 16 characters (a long random secret)' })
    .optional(),
  /** Bearer token /metrics requires when set; needed (or metrics_public) off loopback. */
  metrics_token: z
    .string()
    .min(16, { message: 'use at least 16 characters (a long random secret)' })
    .optional(),
  /** Serve /metrics without a token on a non-loopback admin_listen: only behind a network policy. */
  metrics_public: z.boolean().default(false),
  identity: identitySchema.prefault({}),
  store: z.union([z.literal('memory'), redisStoreSchema]).default('memory'),
  on_store_error: z.enum(['fail_open', 'fail_closed']).default('fail_open'),
  /**
   * How long a client may take to send a request, and how many connections the listeners
   * hold. Slow clients (slowloris) are cut off instead of holding sockets forever; past
   * `max_connections` new connections are closed at once. Applied at start (a restart takes
   * an edit). See docs/security.md.
   */
  server: z
    .strictObject({
      /** Time from a connection's (or request's) first byte to the end of its headers; 408 after. */
      headers_timeout_ms: positiveInt.default(10_000),
      /** Longest silence while a request body is arriving; 408 after. */
      body_idle_timeout_ms: positiveInt.default(30_000),
      /**
       * Longest a client may leave its response unread (the proxy's send buffer full) before
       * it is cut off, as a hang-up. Paused for it, the upstream call held one of the
       * upstream's connections for as long as the client kept its socket open.
       */
      response_stall_timeout_ms: positiveInt.default(30_000),
      /** Time to receive a whole request, headers and body; a bound on bodies that drip forever. */
      request_timeout_ms: positiveInt.default(300_000),
      /** An idle keep-alive connection is closed after this; above a load balancer's idle timeout (often 60 s). */
      keep_alive_timeout_ms: positiveInt.default(65_000),
      /**
       * Open connections the traffic listener holds; more are closed on accept. Default: the
       * process's open-file limit less what the upstream pool and the rest of the process
       * need, at most 16,384.
       */
      max_connections: positiveInt.optional(),
    })
    .prefault({}),
  max_body_bytes: positiveInt.default(10 * 1024 * 1024),
  max_json_response_bytes: positiveInt.default(16 * 1024 * 1024),
  /** Deepest nesting a request body may have; deeper is 400 (recursive walks stay bounded). */
  max_json_depth: positiveInt.max(1_000).default(64),
  /**
   * How long a concurrency slot (and the request's reservation) outlives the last sign of
   * its replica: the proxy refreshes its in-flight requests' slots every third of this, so
   * a long stream keeps its slot, while a crashed replica's slots (or a lost release) free
   * within this. Default 15 s.
   */
  slot_ttl_ms: positiveInt.default(15_000),
  metrics: z.strictObject({ max_tenants: positiveInt.default(1000) }).prefault({}),
  /**
   * OpenTelemetry trace export (docs/observability.md, Traces). Each key wins over its
   * OTEL_* variable; without an endpoint from either, tracing is off and costs nothing.
   * Applied at start.
   */
  telemetry: telemetryConfigSchema.optional(),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info') })
    .prefault({}),
  shutdown_grace_ms: positiveInt.default(30_000),
  control_plane: z
    .strictObject({
      url: z.url({ protocol: /^https?$/ }),
      token: headerValueSchema.min(1),
      poll_interval_ms: positiveInt.default(5_000),
      /** Where the last good snapshot is saved; a relative path is read against the config file's folder. */
      snapshot_path: z.string().min(1).default('.lanekeeper/snapshot.json'),
    })
    .optional(),
  vector: z
    .strictObject({
      url: z.url({ protocol: /^https?$/ }),
      api_key: headerValueSchema.optional(),
      mode: z.enum(['collection', 'partition']).default('collection'),
      path_prefix: z.string().startsWith('/').default('/qdrant'),
      /**
       * The most of one Qdrant answer the route holds (it reads each whole, to rename
       * collections and strip tenant_id): a scroll of a large collection with its vectors
       * could otherwise take the proxy's memory, and every tenant's requests with it.
       */
      max_response_bytes: positiveInt.max(1024 * 1024 * 1024).default(32 * 1024 * 1024),
      templates: z
        .array(z.strictObject({ name: z.string(), size: positiveInt, distance: z.string() }))
        .default([{ name: 'documents', size: 1536, distance: 'Cosine' }]),
    })
    .optional(),
  dialects: z.array(customDialectSchema).default([]),
  pricing: priceTableSchema.default({}),
  plans: namedRecord(planSchema).default({}),
  tenants: z.array(tenantSchema).default([]),
});

/**
 * The config with its upstreams in one form: `upstreams` always holds them in order (a
 * single `upstream:` becomes the one entry "default", serving every model), and `upstream`
 * is the first, whose dialect also picks the client dialect when there is only one.
 */
export const configSchema = configObjectSchema
  .superRefine((config, ctx) => {
    const count = (config.upstream ? 1 : 0) + (config.upstreams ? 1 : 0);
    if (count === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['upstream'],
        message: 'set upstream (one backend) or upstreams',
      });
    if (count === 2)
      ctx.addIssue({ code: 'custom', path: ['upstreams'], message: 'set upstream or upstreams, not both' });
    for (const [name, upstream] of Object.entries(config.upstreams ?? {})) {
      if (!upstream.models)
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', name, 'models'],
          message: 'each of upstreams needs models: the ids or globs (*) it serves',
        });
    }
    if (config.upstreams && Object.keys(config.upstreams).length === 0)
      ctx.addIssue({ code: 'custom', path: ['upstreams'], message: 'name at least one upstream' });
  })
  .transform((config) => {
    const upstreams = config.upstreams ?? { [SINGLE_UPSTREAM]: config.upstream as UpstreamConfig };
    const upstream = Object.values(upstreams)[0] as UpstreamConfig;
    return { ...config, upstream, upstreams, multiUpstream: config.upstreams !== undefined };
  });

export type CustomDialectConfig = z.infer<typeof customDialectSchema>;
/** A custom dialect as written in YAML, before defaults are applied. */
export type CustomDialectInput = z.input<typeof customDialectSchema>;
export type RedisStoreConfig = z.infer<typeof redisStoreSchema>;
/** The whole validated configuration. Frozen: stages read it, never write it. */
export type Config = Readonly<z.infer<typeof configSchema>>;

/** True for a host:port only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(address: string): boolean {
  const host = address
    .slice(0, address.lastIndexOf(':'))
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * /metrics off loopback needs a token (or metrics_public). `address` is the admin listener's:
 * the configured one, or on a reload the one the proxy started on, since admin_listen applies
 * only at a restart.
 */
export function metricsTokenProblem(
  config: Pick<Config, 'admin_listen' | 'metrics_token' | 'metrics_public'>,
  address: string = config.admin_listen,
): ConfigProblem | undefined {
  if (isLoopback(address) || config.metrics_token !== undefined || config.metrics_public) return undefined;
  const where =
    address === config.admin_listen
      ? `admin_listen ${address} is not loopback`
      : `the admin listener runs on ${address} until a restart (admin_listen applies at start), which is not loopback`;
  return {
    path: 'metrics_token',
    message: `${where}: set metrics_token (Prometheus then sends it as a bearer token) or metrics_public: true (only where a network policy guards the admin port)`,
  };
}

/** Checks that span fields, which a per-field schema cannot express. */
export function crossCheck(config: z.infer<typeof configSchema>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.server.headers_timeout_ms > config.server.request_timeout_ms) {
    problems.push({
      path: 'server.headers_timeout_ms',
      message: `must not exceed server.request_timeout_ms (${config.server.request_timeout_ms})`,
    });
  }
  const metrics = metricsTokenProblem(config);
  if (metrics) problems.push(metrics);
  if (config.listen === config.admin_listen && !config.listen.endsWith(':0')) {
    problems.push({
      path: 'admin_listen',
      message: 'must differ from listen: admin endpoints never share the traffic port',
    });
  }
  const seenIds = new Map<string, number>();
  const seenKeys = new Map<string, string>();
  config.tenants.forEach((tenant, i) => {
    if (seenIds.has(tenant.id)) {
      problems.push({
        path: `tenants.${i}.id`,
        message: `duplicate tenant id "${tenant.id}" (also tenants.${seenIds.get(tenant.id)})`,
      });
    }
    seenIds.set(tenant.id, i);
    if (!Object.hasOwn(config.plans, tenant.plan)) {
      problems.push({
        path: `tenants.${i}.plan`,
        message: `unknown plan "${tenant.plan}"; plans are: ${Object.keys(config.plans).join(', ') || '(none)'}`,
      });
    }
    tenant.api_key_sha256.forEach((hash, k) => {
      const owner = seenKeys.get(hash);
      if (owner !== undefined && owner !== tenant.id) {
        problems.push({
          path: `tenants.${i}.api_key_sha256.${k}`,
          message: `this key hash also belongs to tenant "${owner}"`,
        });
      }
      seenKeys.set(hash, tenant.id);
    });
  });
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const dialect = upstream.dialect;
    if (dialect !== 'auto' && !dialectByName(dialect) && !config.dialects.some((d) => d.name === dialect)) {
      problems.push({
        path: config.multiUpstream ? `upstreams.${name}.dialect` : 'upstream.dialect',
        message: `unknown dialect "${dialect}": use auto, openai, vllm, anthropic, gemini, ollama or the name of a custom dialect`,
      });
    }
  }
  // With a control plane, plans and tenants come from it, and it knows nothing of this
  // proxy's upstreams: a model none of them serves is a warning (configWarnings), and a 400
  // for the requests that name it. Refused whole, the snapshot was refused with every one
  // after it, a revoked key or a suspended tenant included, until the plan was fixed.
  if (config.multiUpstream && !config.control_plane) problems.push(...unroutable(config));
  if (config.identity.sources.includes('jwt') && !config.identity.jwt) {
    problems.push({
      path: 'identity.jwt',
      message: 'the jwt source needs identity.jwt (jwks_url or public_key, plus tenant_claim)',
    });
  }
  const jwt = config.identity.jwt;
  if (jwt && !jwt.jwks_url && jwt.public_key !== undefined) {
    try {
      readPublicKey(jwt.public_key, jwt.algorithms);
    } catch (error) {
      problems.push({ path: 'identity.jwt.public_key', message: (error as Error).message });
    }
  }
  return problems;
}

export function pathOf(path: ReadonlyArray<PropertyKey>): string {
  return path.map(String).join('.') || '(root)';
}

/** What one branch of a union expected, from its issue at the union's own path. */
function expectation(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_value') return issue.values.map((value) => JSON.stringify(value)).join(' or ');
  if (issue.code === 'invalid_type')
    return `${/^[aeio]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}`;
  return issue.message;
}

/**
 * A zod issue as an operator reads it. A refused record key says why, not "Invalid key in
 * record". A union (`store: memory` or a Redis object) said "Invalid input" whatever was
 * wrong: the branch that got past the value's type reports its own problems (`store.redis:
 * expected string`), and when none did the problem says what each branch expected
 * (`must be "memory" or an object`). A union with its own message keeps it.
 */
export function problemsOf(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[] = []): ConfigProblem[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_key')
    return [{ path: pathOf(path), message: issue.issues[0]?.message ?? issue.message }];
  if (issue.code === 'invalid_union' && issue.message === 'Invalid input' && issue.errors.length > 0) {
    const atRoot = (branch: readonly z.core.$ZodIssue[]) =>
      branch.every((i) => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value'));
    const deeper = issue.errors.find((branch) => branch.length > 0 && !atRoot(branch));
    if (deeper) return deeper.flatMap((inner) => problemsOf(inner, path));
    const expected = issue.errors.flatMap((branch) => (branch[0] ? [expectation(branch[0])] : []));
    return [{ path: pathOf(path), message: `must be ${expected.join(' or ')}` }];
  }
  return [{ path: pathOf(path), message: issue.message }];
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** Validates raw config (parsed YAML or a control-plane snapshot); throws ConfigError listing every problem. */
export function parseConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    throw new ConfigError(result.error.issues.flatMap((issue) => problemsOf(issue)));
  }
  const problems = crossCheck(result.data);
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(result.data);
}

/** Non-fatal findings worth telling an operator (check-config prints them; start-up logs them). */
/** Plan and tenant models that none of the upstreams serves. */
function unroutable(config: z.infer<typeof configSchema>): ConfigProblem[] {
  const overrides = config.tenants.map((t) => ({ id: t.id, models: t.overrides.models }));
  return unroutableModels(config.upstreams, config.plans, overrides, 'upstreams');
}

export function configWarnings(config: Config): ConfigProblem[] {
  const warnings: ConfigProblem[] = [];
  if (config.multiUpstream && config.control_plane) {
    // Logged on every snapshot applied: a few lines, however many tenant overrides name one.
    const problems = unroutable(config);
    for (const problem of problems.slice(0, 10))
      warnings.push({ ...problem, message: `${problem.message}: requests for it are answered 400` });
    if (problems.length > 10)
      warnings.push({ path: 'plans', message: `${problems.length - 10} more models no upstream serves` });
  }
  for (const [name, plan] of Object.entries(config.plans)) {
    for (const [alias, target] of Object.entries(plan.models)) {
      for (const model of modelChain(target)) {
        if (Object.hasOwn(config.pricing, model)) continue;
        warnings.push({
          path: `plans.${name}.models.${alias}`,
          message: `model "${model}" has no pricing entry: its tokens count as unpriced`,
        });
      }
    }
  }
  for (const [model, price] of Object.entries(config.pricing)) {
    if (price.cache_write !== undefined) continue;
    const upstream = routeModel(config.upstreams, model);
    if (upstream === undefined || config.upstreams[upstream]!.dialect !== 'anthropic') continue;
    // Anthropic bills a prompt-cache write at 1.25 times input (2 times for a 1-hour
    // cache), which a tenant chooses with cache_control: without this price it is booked
    // at the input rate.
    warnings.push({
      path: `pricing.${model}`,
      message: `model "${model}" goes to an Anthropic upstream ("${upstream}") and has no cache_write price: prompt-cache writes are booked at the input price, below what Anthropic bills`,
    });
  }
  const jwt = config.identity.jwt;
  if (jwt && config.identity.sources.includes('jwt') && jwt.audience === undefined) {
    // An IdP signs every app's tokens with the same keys: without an audience, a token it
    // issued for another app (with the tenant claim in it) admits that tenant here too.
    warnings.push({
      path: 'identity.jwt.audience',
      message: 'not set: a token the identity provider issued for any other app is accepted too',
    });
  }
  return warnings;
}
