/** `lanekeeper tenants list|get|create|suspend|resume|erase`: the admin API's /v1/tenants. */
import { parse as parseYaml } from 'yaml';
import { expectPositionals, requireFlag } from './args.js';
import { apiPath } from './client.js';
import { FORMAT_FLAG, FORMAT_HELP, readInput, type Resource, type Subcommand } from './command.js';
import { CliUsageError } from './errors.js';
import { fetchAllPages } from './pages.js';
import { formatOf, renderObject, renderRows, type Column } from './output.js';

type Tenant = Record<string, unknown>;

const COLUMNS: Column<Tenant>[] = [
  { header: 'id', value: (t) => t.id },
  { header: 'plan', value: (t) => t.plan },
  { header: 'status', value: (t) => t.status },
  { header: 'overrides', value: (t) => t.overrides },
  { header: 'created_at', value: (t) => t.created_at },
  { header: 'updated_at', value: (t) => t.updated_at },
];

const ID_HELP =
  '  ID                        the tenant id (a-z, 0-9 and "-"; put it after -- if it starts with "-")\n';

function setStatus(status: 'active' | 'suspended', summary: string, effect: string): Subcommand {
  return {
    synopsis: 'ID [--format table|csv|json]',
    summary,
    details: `${ID_HELP}${FORMAT_HELP}\n${effect}\nPrints the tenant as changed.\n`,
    flags: FORMAT_FLAG,
    async run(args, ctx) {
      const format = formatOf(args.flags.format);
      const [id] = expectPositionals(args, ['ID']);
      const tenant = await ctx.client().call('PATCH', apiPath`/v1/tenants/${id}`, { status });
      ctx.stdout(renderObject(tenant as Tenant, format));
    },
  };
}

export const tenants: Resource = {
  name: 'tenants',
  summary: 'list, read, onboard, suspend, resume and erase tenants',
  subcommands: {
    list: {
      synopsis: '[--format table|csv|json]',
      summary: 'list every tenant',
      details: `${FORMAT_HELP}\nFollows the API's pages to the end. JSON is an array of the API's tenant objects.\n`,
      flags: FORMAT_FLAG,
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        expectPositionals(args, []);
        const items = await fetchAllPages(ctx.client(), '/v1/tenants');
        ctx.stdout(renderRows(items as Tenant[], COLUMNS, format));
      },
    },
    get: {
      synopsis: 'ID [--format table|csv|json]',
      summary: 'show one tenant',
      details: `${ID_HELP}${FORMAT_HELP}`,
      flags: FORMAT_FLAG,
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        const [id] = expectPositionals(args, ['ID']);
        ctx.stdout(
          renderObject((await ctx.client().call('GET', apiPath`/v1/tenants/${id}`)) as Tenant, format),
        );
      },
    },
    create: {
      synopsis: 'ID --plan PLAN [--status active|suspended] [--overrides FILE] [--format table|csv|json]',
      summary: 'onboard a tenant on a plan',
      details: `${ID_HELP}  --plan PLAN               the plan's id (it must exist)
  --status active|suspended (default active)
  --overrides FILE          a YAML (or JSON) mapping of plan fields this tenant overrides, or - for stdin
${FORMAT_HELP}
Prints the tenant as created (with its vector collections when the control plane has Qdrant).
`,
      flags: { plan: 'value', status: 'value', overrides: 'value', ...FORMAT_FLAG },
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        const [id] = expectPositionals(args, ['ID']);
        const body: Record<string, unknown> = { id, plan: requireFlag(args, 'plan') };
        if (args.flags.status !== undefined) body.status = args.flags.status;
        if (args.flags.overrides !== undefined) {
          const file = args.flags.overrides;
          let overrides: unknown;
          try {
            overrides = parseYaml(await readInput(file, ctx));
          } catch (error) {
            if (error instanceof CliUsageError) throw error;
            throw new CliUsageError(`${file} is not YAML: ${(error as Error).message}`);
          }
          if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides))
            throw new CliUsageError(`${file}: expected a mapping of plan fields to override`);
          body.overrides = overrides;
        }
        const tenant = await ctx.client().call('POST', '/v1/tenants', body);
        ctx.stdout(renderObject(tenant as Tenant, format));
      },
    },
    suspend: setStatus(
      'suspended',
      'suspend a tenant (its requests are refused; nothing is deleted)',
      "Every proxy refuses the tenant's requests within about a second; its keys, plan and usage stay.",
    ),
    resume: setStatus(
      'active',
      'resume a suspended tenant',
      "Every proxy serves the tenant's requests again.",
    ),
    erase: {
      synopsis: 'ID [--yes] [--format table|csv|json]',
      summary: 'erase a tenant and all its data (GDPR; cannot be undone)',
      details: `${ID_HELP}  --yes                     do not ask (at a terminal the command asks you to type the id)
${FORMAT_HELP}
Erases the tenant everywhere: proxies stop serving it, then its counters, usage rows, keys
and vector collections go (see "Erasure" in docs/control-plane.md). An erasure that fails
part-way resumes where it stopped when run again. Prints the API's erasure report.
`,
      flags: { yes: 'switch', ...FORMAT_FLAG },
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        const [id] = expectPositionals(args, ['ID']);
        if (args.flags.yes === undefined && ctx.ask) {
          const typed = await ctx.ask(
            `Erase tenant "${id}" and all its data? This cannot be undone. Type the tenant id to confirm: `,
          );
          if (typed.trim() !== id) throw new CliUsageError('not confirmed: nothing was erased');
        }
        const report = await ctx.client().call('DELETE', apiPath`/v1/tenants/${id}`);
        ctx.stdout(renderObject(report as Tenant, format));
      },
    },
  },
};
