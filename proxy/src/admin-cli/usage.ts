/**
 * `lanekeeper usage --tenant T --from D --to D [--by model|day]`: a tenant's billed usage
 * from the control plane's ledger, by UTC day (GET /v1/tenants/{id}/usage?granularity=day)
 * or by model (GET /v1/tenants/{id}/usage/by-model), with a total.
 */
import { expectPositionals, requireFlag } from './args.js';
import { apiPath } from './client.js';
import { FORMAT_FLAG, FORMAT_HELP, type Resource, type Subcommand } from './command.js';
import { parseBound } from './dates.js';
import { CliUsageError } from './errors.js';
import { formatOf, renderRows, type Column } from './output.js';

type Row = Record<string, unknown>;

const DAY_MS = 86_400_000;

const SUMS = [
  'requests',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'cost_usd',
  'unpriced_requests',
] as const;

const columns = (first: Column<Row>): Column<Row>[] => [
  first,
  ...SUMS.map((name) => ({ header: name, value: (r: Row) => r[name], numeric: true })),
];

const BY_DAY = columns({
  header: 'day',
  // A UTC day's bucket starts at midnight: the date says it all. The total row has no start.
  value: (r) => (typeof r.start === 'string' ? r.start.slice(0, 10) : r.label),
});
const BY_MODEL = columns({ header: 'model', value: (r) => (r.label !== undefined ? r.label : r.model) });

/** The one subcommand-less command: `usage` runs itself. */
export const usageCommand: Subcommand = {
  synopsis: '--tenant T --from DATE --to DATE [--by model|day] [--format table|csv|json]',
  summary: "a tenant's usage from the ledger, by day or by model",
  details: `  --tenant T                the tenant
  --from DATE, --to DATE    YYYY-MM-DD (UTC days; --to includes its whole day) or ISO-8601
                            times (2026-11-01T09:00:00Z; --to is then exclusive; no offset means UTC;
                            by day, only midnights)
  --by day|model            one row per UTC day with usage (default), or per model
${FORMAT_HELP}
Columns: requests, input/output/cached/cache-write/reasoning tokens, cost_usd (priced at the
prices in force when each request was made) and unpriced_requests (requests whose model had
no price; not in cost_usd). The table ends with a total row; CSV has no total row (so that a
sum over it is right); JSON is the API's answer, total included. Ranges span at most 400
days by day and 31 days by model.
`,
  flags: { tenant: 'value', from: 'value', to: 'value', by: 'value', ...FORMAT_FLAG },
  async run(args, ctx) {
    const format = formatOf(args.flags.format);
    expectPositionals(args, []);
    const tenant = requireFlag(args, 'tenant');
    const from = parseBound('from', requireFlag(args, 'from'));
    const to = parseBound('to', requireFlag(args, 'to'));
    const by = args.flags.by ?? 'day';
    if (by !== 'day' && by !== 'model')
      throw new CliUsageError(`--by must be day or model, not ${JSON.stringify(by)}`);
    // The API counts whole day buckets: a range of hours reported the whole day's usage,
    // some of it outside the range, and another total than --by model (found by review).
    if (by === 'day' && (from.getTime() % DAY_MS !== 0 || to.getTime() % DAY_MS !== 0)) {
      throw new CliUsageError(
        '--by day counts whole UTC days: give --from and --to as days (YYYY-MM-DD) or midnights, or use --by model for a range of hours',
      );
    }
    const query = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
    if (by === 'day') query.set('granularity', 'day');
    const path =
      by === 'day' ? apiPath`/v1/tenants/${tenant}/usage` : apiPath`/v1/tenants/${tenant}/usage/by-model`;
    const report = (await ctx.client().call('GET', `${path}?${query}`)) as Row;
    const rows = ((by === 'day' ? report.buckets : report.models) ?? []) as Row[];
    const total = { ...(report.total as Row), label: 'total' };
    ctx.stdout(renderRows(rows, by === 'day' ? BY_DAY : BY_MODEL, format, { json: report, footer: [total] }));
  },
};

export const usage: Resource = { name: 'usage', summary: usageCommand.summary, subcommands: {} };
