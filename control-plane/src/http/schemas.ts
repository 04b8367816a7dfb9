/**
 * JSON schemas of the admin API. Plan, override and price bodies are generated from the
 * shared contract's zod schemas (@lanekeeper/contract), so the control plane accepts
 * exactly the shapes a proxy will parse; the routes' `parseWith` then re-runs the zod
 * schema for what JSON schema cannot say (a plan needs models.default) and applies defaults.
 */
import { z } from 'zod';
import { TENANT_ID_PATTERN, overridesSchema, planSchema, priceSchema } from '@lanekeeper/contract';
import { BadRequestError } from '../errors.js';

type JsonSchema = Record<string, unknown>;

function fromZod(schema: z.ZodType): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    io: 'input',
    target: 'draft-7',
  }) as JsonSchema;
  return stripDefaults(rest) as JsonSchema;
}

/** Defaults are applied by zod after validation; in JSON schema they would only be noise. */
function stripDefaults(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripDefaults);
  if (node && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node)
        .filter(([k]) => k !== 'default')
        .map(([k, v]) => [k, stripDefaults(v)]),
    );
  }
  return node;
}

/** Plan ids: what a YAML key would reasonably be, and safe in a URL path. */
export const PLAN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const planJson = fromZod(planSchema);
const planProps = planJson.properties as JsonSchema;

export const tenantId = {
  type: 'string',
  maxLength: 63,
  pattern: TENANT_ID_PATTERN.source,
  description: '1-63 characters of a-z, 0-9 and "-", starting with a letter or digit',
};
export const planId = {
  type: 'string',
  maxLength: 63,
  pattern: PLAN_ID_PATTERN.source,
  description: '1-63 characters of A-Z, a-z, 0-9, "_", "." and "-", starting with a letter or digit',
};
const keyId = { type: 'string', maxLength: 64, pattern: '^key_[A-Za-z0-9_-]{1,59}$' };

export const planCreateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'models'],
  properties: { id: planId, ...planProps },
};
/** PUT /v1/plans/{id}: the whole plan, its id in the path. */
export const planPutBody = {
  type: 'object',
  additionalProperties: false,
  required: ['models'],
  properties: planProps,
};
export const planPatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: planProps,
};

const status = { type: 'string', enum: ['active', 'suspended'] };
const overridesJson = fromZod(overridesSchema);

export const tenantCreateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'plan'],
  properties: { id: tenantId, plan: planId, status, overrides: overridesJson },
};
export const tenantPatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { plan: planId, status, overrides: overridesJson },
};

export const pricingVersionBody = {
  type: 'object',
  additionalProperties: false,
  required: ['effective_from', 'prices'],
  properties: {
    effective_from: { type: 'string', format: 'date-time' },
    prices: {
      type: 'object',
      minProperties: 1,
      propertyNames: { type: 'string', minLength: 1, maxLength: 200 },
      additionalProperties: fromZod(priceSchema),
    },
  },
};

export const tenantParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: tenantId },
};
export const planParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: planId },
};
export const keyParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'keyId'],
  properties: { id: tenantId, keyId },
};

const pageProps = {
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  cursor: { type: 'string', maxLength: 200 },
};
export const pageQuery = { type: 'object', additionalProperties: false, properties: pageProps };
export const auditQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...pageProps,
    resource: { type: 'string', maxLength: 300 },
    action: { type: 'string', maxLength: 100 },
    tenant: tenantId,
    actor: { type: 'string', maxLength: 300 },
  },
};
export const usageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    granularity: { type: 'string', enum: ['hour', 'day'], default: 'hour' },
  },
};
export const usageByModelQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
  },
};

/** Shared response shape of every error. */
export const errorResponse = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
    },
  },
};

/** Runs a zod schema over already JSON-schema-valid input: refinements and defaults. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({
    field: [where, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
  throw new BadRequestError(details.map((d) => `${d.field}: ${d.message}`).join('; '), details);
}
