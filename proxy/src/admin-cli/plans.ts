/**
 * `lanekeeper plans list|get|apply -f FILE`. apply reads YAML (JSON is YAML too) in either
 * of two shapes: one plan with its `id`, or a proxy config's `plans:` mapping of id to plan,
 * so a section of an existing lanekeeper.yaml can be moved to the control plane as it is.
 * Each plan is sent whole with PUT /v1/plans/{id}: created, or replaced so that the plan is
 * what the file says (a field deleted from the file is deleted from the plan).
 */
import { parse as parseYaml } from 'yaml';
import { expectPositionals, requireFlag } from './args.js';
import { apiPath } from './client.js';
import { FORMAT_FLAG, FORMAT_HELP, readInput, type Resource } from './command.js';
import { CliUsageError } from './errors.js';
import { formatOf, renderObject, renderRows, type Column } from './output.js';
import { fetchAllPages } from './pages.js';

type Plan = Record<string, unknown>;

const COLUMNS: Column<Plan>[] = [
  { header: 'id', value: (p) => p.id },
  { header: 'models', value: (p) => p.models },
  { header: 'rate_limits', value: (p) => p.rate_limits },
  { header: 'max_output_tokens', value: (p) => p.max_output_tokens, numeric: true },
  { header: 'updated_at', value: (p) => p.updated_at },
];

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** The plans a file describes, as [id, body without id], in the file's order. */
export function plansInFile(text: string, file: string): [string, Record<string, unknown>][] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new CliUsageError(`${file} is not YAML: ${(error as Error).message}`);
  }
  const shapes = `expected a plan with its id (id: free, models: {default: …}) or a plans: mapping of id to plan`;
  if (!isMapping(doc)) throw new CliUsageError(`${file}: ${shapes}`);
  if (Object.hasOwn(doc, 'plans') && !Object.hasOwn(doc, 'id')) {
    const plans = doc.plans;
    if (!isMapping(plans) || Object.keys(plans).length === 0)
      throw new CliUsageError(`${file}: plans: must map each plan id to a plan`);
    return Object.entries(plans).map(([id, body]) => {
      if (!isMapping(body)) throw new CliUsageError(`${file}: plans.${id} must be a mapping (a plan)`);
      return [id, body];
    });
  }
  const { id, ...body } = doc;
  if (typeof id !== 'string' || id === '') throw new CliUsageError(`${file}: ${shapes}`);
  return [[id, body]];
}

export const plans: Resource = {
  name: 'plans',
  summary: 'list, read and apply plans',
  subcommands: {
    list: {
      synopsis: '[--format table|csv|json]',
      summary: 'list every plan',
      details: `${FORMAT_HELP}\nJSON is an array of the API's plan objects.\n`,
      flags: FORMAT_FLAG,
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        expectPositionals(args, []);
        ctx.stdout(renderRows((await fetchAllPages(ctx.client(), '/v1/plans')) as Plan[], COLUMNS, format));
      },
    },
    get: {
      synopsis: 'ID [--format table|csv|json]',
      summary: 'show one plan',
      details: `  ID                        the plan's id\n${FORMAT_HELP}`,
      flags: FORMAT_FLAG,
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        const [id] = expectPositionals(args, ['ID']);
        ctx.stdout(renderObject((await ctx.client().call('GET', apiPath`/v1/plans/${id}`)) as Plan, format));
      },
    },
    apply: {
      synopsis: '-f FILE [--format table|csv|json]',
      summary: 'create or update plans from a YAML file',
      details: `  -f, --file FILE           YAML (or JSON); - reads stdin
${FORMAT_HELP}
FILE holds one plan with its id:

  id: free
  models: { default: gpt-4o-mini }
  rate_limits: { requests_per_minute: 20 }

or a proxy config's plans: mapping (plans: {free: {...}, pro: {...}}), applied in order.
Each plan is created, or replaced whole by what the file says. The control plane validates
it as a proxy would; a refused plan prints the API's error and stops (plans before it in the
file are applied). Prints each plan as stored; "created"/"updated" go to stderr.
`,
      flags: { file: 'value', ...FORMAT_FLAG },
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        expectPositionals(args, []);
        const file = requireFlag(args, 'file');
        const entries = plansInFile(await readInput(file, ctx), file);
        const client = ctx.client();
        const applied: Plan[] = [];
        for (const [id, body] of entries) {
          const { status, body: plan } = await client.send('PUT', apiPath`/v1/plans/${id}`, body);
          applied.push(plan as Plan);
          ctx.stderr(`${status === 201 ? 'created' : 'updated'} plan "${id}"\n`);
        }
        ctx.stdout(
          applied.length === 1 ? renderObject(applied[0]!, format) : renderRows(applied, COLUMNS, format),
        );
      },
    },
  },
};
