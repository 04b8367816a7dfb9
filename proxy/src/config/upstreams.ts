/**
 * Upstreams: the backends the proxy forwards to. `upstream:` is one backend that serves
 * every model; `upstreams:` is several, each serving the model ids its `models` globs match,
 * tried in the order written (the first match wins). Routing happens after the plan has
 * rewritten the model, so it is the upstream model id that picks the upstream
 * (docs/providers.md).
 */
import { z } from 'zod';
import { CLIENT_ACCOUNT_HEADERS } from '../headers.js';
import { headerNameSchema, headerValueSchema } from './header-fields.js';
import {
  allowPathSchema,
  globMatches,
  unservedModels,
  type ModelTarget,
  type PlanConfig,
} from '@lanekeeper/contract';

export { globMatches } from '@lanekeeper/contract';
import type { ConfigProblem } from '../errors.js';

const positiveInt = z.number().int().positive();

/** Failures a retry or a fallback is tried on: statuses, or the two ways a call fails before any status. */
export const FAILURE_TRIGGERS = ['connect_error', 'timeout'] as const;
export type FailureTrigger = number | (typeof FAILURE_TRIGGERS)[number];

/**
 * What a fallback model is tried on (the issue's list; 529 is Anthropic's "overloaded"), and
 * 401: the upstream refused the proxy's own key (revoked, expired), which the next
 * candidate's key does not share.
 */
export const FALLBACK_ON: readonly FailureTrigger[] = [
  401,
  429,
  500,
  502,
  503,
  504,
  529,
  'connect_error',
  'timeout',
];

/** A model glob: literal characters and `*` (any run, none included). */
const modelGlob = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[^\s]+$/, { message: 'a model pattern has no spaces' });

/**
 * An upstream's base URL: scheme, host, port and path. A password or a query in it is never
 * sent (requests go to its origin and path), so `https://user:key@host` or `?key=...` would
 * leave the upstream unauthenticated without a word: credentials go in `headers`.
 */
const upstreamUrl = z.url({ protocol: /^https?$/ }).superRefine((value, issue) => {
  // Checks go on after a failed one: a value that is no URL has its problem already.
  if (!URL.canParse(value)) return;
  const url = new URL(value);
  if (url.username !== '' || url.password !== '')
    issue.addIssue({
      code: 'custom',
      message:
        'an upstream url takes no user or password (they would never be sent): put the credential in headers',
    });
  if (url.search !== '' || url.hash !== '')
    issue.addIssue({
      code: 'custom',
      message:
        'an upstream url takes no query or fragment (they would never be sent): a key goes in headers (x-goog-api-key for Gemini)',
    });
});

export const upstreamSchema = z.strictObject({
  url: upstreamUrl,
  dialect: z.enum(['auto', 'openai', 'anthropic', 'gemini', 'ollama']).or(z.string().min(1)).default('auto'),
  headers: z
    .record(headerNameSchema, headerValueSchema)
    .superRefine((headers, issue) => {
      // Sent lower-cased: of two spellings of one name, only one would go.
      const seen = new Set<string>();
      for (const name of Object.keys(headers)) {
        const lower = name.toLowerCase();
        if (seen.has(lower))
          issue.addIssue({ code: 'custom', path: [name], message: `"${lower}" is given twice` });
        seen.add(lower);
      }
    })
    .default({}),
  /**
   * The upstream model ids this upstream serves: exact ids or globs with `*`. Required in
   * `upstreams`; `upstream:` (one backend) serves every model.
   */
  models: z.array(modelGlob).min(1).optional(),
  timeout_ms: positiveInt.default(600_000),
  /**
   * The most a request may spend on this upstream, from its first call to the answer's last
   * byte, retries included; absent, no bound. `timeout_ms` bounds silences, so an upstream
   * that keeps sending holds a stream, its slot and its reservation for as long as it does.
   */
  max_duration_ms: positiveInt.max(86_400_000).optional(),
  connect_timeout_ms: positiveInt.default(10_000),
  connections: positiveInt.default(128),
  /**
   * Retries on this upstream before the next fallback model is tried: `attempts` in all
   * (1 = no retry), on these statuses or failures, with exponential backoff and full jitter
   * (honouring Retry-After up to max_backoff_ms), within the request's timeout.
   */
  retries: z
    .strictObject({
      attempts: positiveInt.max(10).default(1),
      on: z
        .array(z.union([z.number().int().min(400).max(599), z.enum(FAILURE_TRIGGERS)]))
        .default([429, 502, 503, 504, 'connect_error']),
      base_backoff_ms: positiveInt.max(60_000).default(200),
      max_backoff_ms: positiveInt.max(600_000).default(10_000),
    })
    .prefault({}),
  /** Consecutive failures after which the upstream is skipped (outlier ejection). */
  eject_after: positiveInt.default(5),
  /** How long an ejected upstream is skipped; doubles while it keeps failing its probe. */
  eject_for_ms: positiveInt.default(30_000),
  drain_on_client_abort: z.boolean().default(false),
  drain_timeout_ms: positiveInt.default(30_000),
  drain_max_bytes: positiveInt.default(8 * 1024 * 1024),
  /** Endpoints every tenant may reach beyond the metered ones, on top of each plan's own. */
  allow_paths: z.array(allowPathSchema).default([]),
  /**
   * Of the headers that choose the account a credential is used as (headers.ts
   * CLIENT_ACCOUNT_HEADERS), those a client may send this upstream; the rest are dropped.
   */
  pass_client_headers: z.array(z.string().toLowerCase().pipe(z.enum(CLIENT_ACCOUNT_HEADERS))).default([]),
});

export type UpstreamConfig = z.infer<typeof upstreamSchema>;

/** Upstream names: map keys that keep their written order (a key like "1" would not). */
export const upstreamNameSchema = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, {
  message: 'upstream names are 1-63 characters of a-z, 0-9, "_" and "-", starting with a letter',
});

/** The upstream a single `upstream:` becomes: one entry named "default" that serves every model. */
export const SINGLE_UPSTREAM = 'default';

/** The name of the first upstream whose models match the id, or undefined. */
export function routeModel(
  upstreams: Readonly<Record<string, UpstreamConfig>>,
  id: string,
): string | undefined {
  for (const [name, upstream] of Object.entries(upstreams)) {
    if (upstream.models === undefined || upstream.models.some((glob) => globMatches(glob, id))) return name;
  }
  return undefined;
}

/**
 * Every plan model (and tenant override) that no upstream serves, by its path, plan, alias
 * and id: such a configuration is refused, so no request finds out at run time.
 */
export function unroutableModels(
  upstreams: Readonly<Record<string, UpstreamConfig>>,
  plans: Readonly<Record<string, PlanConfig>>,
  overrides: readonly { id: string; models?: Readonly<Record<string, ModelTarget>> | undefined }[],
  upstreamsPath: string,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const serves = (id: string) => routeModel(upstreams, id) !== undefined;
  const check = (path: string, owner: string, models: Readonly<Record<string, ModelTarget>>) => {
    for (const { alias, id } of unservedModels(models, serves)) {
      problems.push({
        path: `${path}.${alias}`,
        message: `${owner}, alias "${alias}": no upstream serves model "${id}" (no ${upstreamsPath}.*.models matches it)`,
      });
    }
  };
  for (const [name, plan] of Object.entries(plans))
    check(`plans.${name}.models`, `plan "${name}"`, plan.models);
  overrides.forEach((tenant, i) => {
    if (tenant.models) check(`tenants.${i}.overrides.models`, `tenant "${tenant.id}"`, tenant.models);
  });
  return problems;
}
