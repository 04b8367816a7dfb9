/**
 * Request validation for Fastify. Fastify's default ajv setup coerces types and silently
 * drops unknown properties; an admin API must instead refuse both, naming the field. So
 * bodies use a strict ajv (no coercion, no removal), while the query string and path
 * parameters, which are text by nature, get type coercion. Every error is rendered as
 * `{field, message}` pairs, with the pattern's description in place of a raw regex.
 */
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, FastifySchemaValidationError } from 'fastify';

// ajv-formats ships CommonJS with a default export that NodeNext sees as a namespace.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const common = { allErrors: true, removeAdditional: false, verbose: true, strict: false } as const;
const bodyAjv = addFormats(new Ajv({ ...common, coerceTypes: false, useDefaults: false }));
const textAjv = addFormats(new Ajv({ ...common, coerceTypes: true, useDefaults: true }));

/** Installs the two validators on an app. */
export function installValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object),
  );
}

/** One named problem with a request. */
export interface FieldProblem {
  field: string;
  message: string;
}

function describe(error: ErrorObject | FastifySchemaValidationError): string {
  const e = error as ErrorObject;
  switch (e.keyword) {
    case 'additionalProperties':
      return 'unknown field';
    case 'required':
      return 'is required';
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
