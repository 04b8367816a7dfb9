/**
 * Plans, tenants, overrides and prices: the shapes an operator writes in the proxy's YAML
 * and the control plane stores in PostgreSQL and serves to every proxy. Both sides validate
 * with these very schemas, so a plan the control plane accepts is one every proxy runs.
 */
import { z } from 'zod';
import { allowPathSchema } from './allow-paths.js';

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * A tenant's incarnation as the control plane writes it: a UUID in PostgreSQL's lowercase
 * text form. Only this form is accepted, so the proxy never carries (and the ledger never
 * compares) anything but what the control plane issued.
 */
export const INCARNATION_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Which incarnation of its id a tenant is: new each time the id is created again after an
 * erasure. The control plane sets it in the config it serves and the proxy copies it into
 * each usage event, so the ledger can tell a late event of an erased tenant from one of the
 * tenant created again under the same id (docs/usage-events.md).
 */
export const incarnationSchema = z
  .string()
  .regex(INCARNATION_PATTERN, { message: 'expected a lowercase UUID, as the control plane sets it' });

const positiveInt = z.number().int().positive();

/** A plan's `max_output_tokens` when it sets none. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;

/** Limits of a plan; each one is optional and absent means unlimited. */
export const rateLimitsSchema = z.strictObject({
  requests_per_minute: positiveInt.optional(),
  tokens_per_hour: positiveInt.optional(),
  max_concurrent: positiveInt.optional(),
  budget_usd_per_day: z.number().positive().optional(),
  budget_usd_per_month: z.number().positive().optional(),
});

const customPromptsSchema = z.strictObject({ system: z.string().min(1).optional() });

/**
 * What an alias names: one upstream model id, or an ordered fallback list. The next id
 * serves when the one before fails before the client got a byte (docs/providers.md).
 */
const MODELS_PER_TARGET = 8;
const TARGET_SHAPE = `a model id, or a list of 1 to ${MODELS_PER_TARGET} model ids (the first serves, the rest are its fallbacks in order)`;
// The shape first (a list of strings, so the control plane's JSON schema still checks each
// one's text), then each rule with its own message: as one union, a list of nine was
// refused as "Invalid input". A model twice in a list made a
// request fall back from it to itself for as long as the client waited (route-upstream.ts).
const modelTargetSchema = z.union([z.string().min(1), z.array(z.string())], { error: TARGET_SHAPE }).pipe(
  z.custom<string | string[]>().superRefine((value, ctx) => {
    if (typeof value === 'string') return;
    if (value.length === 0 || value.length > MODELS_PER_TARGET) {
      ctx.addIssue({ code: 'custom', message: `${TARGET_SHAPE}; this list has ${value.length}` });
      return;
    }
    const seen = new Set<string>();
    value.forEach((model, i) => {
      if (model === '')
        ctx.addIssue({ code: 'custom', path: [i], message: 'must be a model id (a non-empty string)' });
      else if (seen.has(model))
        ctx.addIssue({
          code: 'custom',
          path: [i],
          message: `${JSON.stringify(model)} is already in this list: a model is tried once, first or as one fallback`,
        });
      else seen.add(model);
    });
  }),
);

/**
 * A record keyed by names an operator writes (model aliases, model ids, plan names). zod
 * drops a `__proto__` key without a word, since assigning it would set the result's
 * prototype, so that entry would vanish while the rest was accepted. JSON.parse and the
 * YAML loader both keep it as an ordinary key, so it does arrive: it is refused, with its
 * path. Other Object.prototype names (`constructor`, `toString`) become ordinary own keys.
 */
export function namedRecord<V extends z.ZodType>(value: V) {
  const record = z.record(z.string().min(1), value);
  return z.preprocess((input: z.input<typeof record>, ctx) => {
    if (input && typeof input === 'object' && Object.hasOwn(input, '__proto__'))
      ctx.addIssue({
        code: 'custom',
        path: ['__proto__'],
        message: '"__proto__" cannot be a name here',
        input,
      });
    return input;
  }, record);
}

const modelsSchema = namedRecord(modelTargetSchema).refine((m) => m.default !== undefined, {
  message: 'a plan needs models.default',
});

/** An alias's target as written: one id or a fallback list. */
export type ModelTarget = z.infer<typeof modelTargetSchema>;

/** The ids an alias tries, in order. */
export function modelChain(target: string | readonly string[]): readonly string[] {
  return typeof target === 'string' ? [target] : target;
}

/** Every upstream model id a plan's aliases name, each once, in order. */
export function planModelIds(models: Readonly<Record<string, ModelTarget>>): string[] {
  return [...new Set(Object.values(models).flatMap((target) => modelChain(target)))];
}

/** A plan: which models a tenant may call, its limits, context size, features and prompt. */
export const planSchema = z.strictObject({
  models: modelsSchema,
  rate_limits: rateLimitsSchema.default({}),
  max_context: positiveInt.optional(),
  /**
   * The output cap (per choice) set on a request that sends none, and the ceiling of a
   * client's own cap (a higher one is lowered to it). Default 4096. It is also what such a
   * request reserves against tokens_per_hour and budgets, so parallel requests fit.
   */
  max_output_tokens: positiveInt.default(DEFAULT_MAX_OUTPUT_TOKENS),
  /**
   * The most completions one request may ask for (`n`, `best_of`, Gemini `candidateCount`);
   * more is 400 invalid_request. Default: 1 on a plan whose rate_limits set tokens_per_hour
   * or a budget (each choice multiplies what is reserved), unlimited otherwise.
   */
  max_choices: positiveInt.optional(),
  features: z.array(z.string().min(1)).default([]),
  custom_prompts: customPromptsSchema.default({}),
  enforce_mid_stream: z.boolean().default(false),
  /** Endpoints this plan's tenants may reach beyond the metered ones (see allow-paths.ts). */
  allow_paths: z.array(allowPathSchema).default([]),
});

/** What a tenant may override of its plan; merged field by field over the plan. */
export const overridesSchema = z.strictObject({
  models: namedRecord(modelTargetSchema).optional(),
  rate_limits: rateLimitsSchema.optional(),
  max_context: positiveInt.optional(),
  max_output_tokens: positiveInt.optional(),
  max_choices: positiveInt.optional(),
  features: z.array(z.string().min(1)).optional(),
  custom_prompts: customPromptsSchema.optional(),
  enforce_mid_stream: z.boolean().optional(),
  allow_paths: z.array(allowPathSchema).optional(),
});

export const tenantSchema = z.strictObject({
  id: z.string().regex(TENANT_ID_PATTERN, {
    message: 'tenant ids are 1-63 characters of a-z, 0-9 and "-", starting with a letter or digit',
  }),
  plan: z.string().min(1),
  status: z.enum(['active', 'suspended']).default('active'),
  api_key_sha256: z
    .array(
      z
        .string()
        .regex(SHA256_HEX, { message: 'expected 64 lowercase hex characters (lanekeeper hash-key KEY)' }),
    )
    .default([]),
  overrides: overridesSchema.default({}),
  /** Set by the control plane; a hand-written config leaves it out (see incarnationSchema). */
  incarnation: incarnationSchema.optional(),
});

/**
 * USD per million tokens. Bounded (today's dearest model costs a few hundred): a price such
 * as 1e300 made a request's cost overflow a double, which the usage API then showed as null,
 * "no cost", and the proxy's spend budgets and metrics took as Infinity.
 */
const MAX_PRICE = 1_000_000;
const usdPerMillion = z
  .number()
  .nonnegative()
  .max(MAX_PRICE, { message: `at most ${MAX_PRICE.toLocaleString('en-US')} USD per million tokens` });

export const priceSchema = z.strictObject({
  input: usdPerMillion,
  output: usdPerMillion,
  cached_input: usdPerMillion.optional(),
  cache_write: usdPerMillion.optional(),
});

/** A price table: model id to its price, as a proxy's `pricing` and a price version hold it. */
export const priceTableSchema = namedRecord(priceSchema);

export type RateLimits = z.infer<typeof rateLimitsSchema>;
export type PlanConfig = z.infer<typeof planSchema>;
export type Overrides = z.infer<typeof overridesSchema>;
export type TenantConfig = z.infer<typeof tenantSchema>;
export type Price = z.infer<typeof priceSchema>;
