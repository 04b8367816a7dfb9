/**
 * Request validation for Fastify. Fastify's default ajv setup coerces types and silently
 * drops unknown properties; an admin API must instead refuse both, naming the field. So
 * bodies use a strict ajv (no coercion, no removal), while the query string and path
 * parameters, which are text by nature, get type coercion. Every error is rendered as
 * `{field, message}` pairs, with the pattern's description in place of a raw regex.
 *
 * Two rules hold for every route without being written in its schema, because a value that
 * passed validation and then failed in PostgreSQL was a 500: each string a schema declares
 * (values and record keys alike) must be text PostgreSQL can store (plain-text.ts), and a
 * `date-time` must be an instant JavaScript can represent, which RFC 3339's leap second
 * (23:59:60) is not.
 */
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, FastifySchemaValidationError } from 'fastify';
import { PLAIN_TEXT_MESSAGE, isPlainText } from './plain-text.js';

// ajv-formats ships CommonJS with a default export that NodeNext sees as a namespace.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const PLAIN_TEXT = 'x-plain-text';

function withOurRules(ajv: Ajv): Ajv {
  addFormats(ajv);
  const rfc3339 = ajv.formats['date-time'] as {
    validate: (text: string) => boolean;
    compare: (a: string, b: string) => number | undefined;
  };
  ajv.addFormat('date-time', {
    type: 'string',
    validate: (text) => rfc3339.validate(text) && !Number.isNaN(Date.parse(text)),
    compare: rfc3339.compare,
  });
  ajv.addKeyword({
    keyword: PLAIN_TEXT,
    type: 'string',
    schemaType: 'boolean',
    validate: (_on: boolean, text: string) => isPlainText(text),
  });
  return ajv;
}

const common = { allErrors: true, removeAdditional: false, verbose: true, strict: false } as const;
const bodyAjv = withOurRules(new Ajv({ ...common, coerceTypes: false, useDefaults: false }));
const textAjv = withOurRules(new Ajv({ ...common, coerceTypes: true, useDefaults: true }));

/**
 * A copy of `node` with the plain-text rule on every subschema that admits a string. Routes
 * keep their schemas as written, so /openapi.json does not show a keyword of ours.
 */
function withPlainText(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withPlainText);
  if (!node || typeof node !== 'object') return node;
  const copy = Object.fromEntries(
    Object.entries(node).map(([key, value]) => [key, withPlainText(value)]),
  ) as Record<string, unknown>;
  const type = (node as { type?: unknown }).type;
  if (type === 'string' || (Array.isArray(type) && type.includes('string'))) copy[PLAIN_TEXT] = true;
  return copy;
}

/** Installs the two validators on an app. */
export function installValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : textAjv).compile(withPlainText(schema) as object),
  );
}

/** One named problem with a request. */
export interface FieldProblem {
  field: string;
  message: string;
}

function describe(e: ErrorObject): string {
  // An error in a record's key (propertyNames) is reported at the record; the key itself is
  // left out, as it is the text that was refused.
  return e.propertyName === undefined ? describeValue(e) : `has a key that ${describeValue(e)}`;
}

function describeValue(e: ErrorObject): string {
  switch (e.keyword) {
    case 'additionalProperties':
      return 'unknown field';
    case 'required':
      return 'is required';
    case PLAIN_TEXT:
      return PLAIN_TEXT_MESSAGE;
    case 'pattern': {
      const description = (e.parentSchema as { description?: string } | undefined)?.description;
      return description ? `must be ${description}` : (e.message ?? 'has the wrong format');
    }
    default:
      return e.message ?? 'is invalid';
  }
}

/** Turns ajv errors into `{field, message}`, e.g. `{field: 'body.rate_limits.rpm', message: 'unknown field'}`. */
export function fieldProblems(
  errors: ReadonlyArray<ErrorObject | FastifySchemaValidationError>,
  context: string,
): FieldProblem[] {
  const seen = new Set<string>();
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    const e = error as ErrorObject;
    // Only says that some key failed; the key's own errors, which say how, come with it.
    if (e.keyword === 'propertyNames') continue;
    const segments = (e.instancePath ?? '')
      .split('/')
      .filter(Boolean)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const extra = (e.params as { additionalProperty?: string; missingProperty?: string } | undefined) ?? {};
    const leaf = extra.additionalProperty ?? extra.missingProperty;
    if (leaf !== undefined) segments.push(leaf);
    const problem = { field: [context, ...segments].join('.'), message: describe(e) };
    const key = `${problem.field}|${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  }
  return problems;
}
