/**
 * `lanekeeper keys create|list|revoke`: a tenant's API keys (/v1/tenants/{id}/keys). The
 * tenant is `--tenant T` (as for `usage`) or the first argument.
 */
import { expectPositionals, type ParsedArgs } from './args.js';
import { apiPath } from './client.js';
import { FORMAT_FLAG, FORMAT_HELP, type Resource } from './command.js';
import { formatOf, renderObject, renderRows, type Column } from './output.js';

type Key = Record<string, unknown>;

const COLUMNS: Column<Key>[] = [
  { header: 'id', value: (k) => k.id },
  { header: 'prefix', value: (k) => k.prefix },
  { header: 'created_at', value: (k) => k.created_at },
  { header: 'last_used_at', value: (k) => k.last_used_at },
  { header: 'revoked_at', value: (k) => k.revoked_at },
];

const FLAGS = { tenant: 'value', ...FORMAT_FLAG } as const;
const TENANT_HELP = '  --tenant T                the tenant (or give it as the first argument)\n';

/** The tenant and the key id (when `withKey`), whichever way the tenant was given. */
function tenantAnd(args: ParsedArgs, withKey: boolean): [string, string] {
  const names = withKey ? ['KEY_ID'] : [];
  if (args.flags.tenant !== undefined) return [args.flags.tenant, expectPositionals(args, names)[0] ?? ''];
  const [tenant, keyId] = expectPositionals(args, ['TENANT', ...names]);
  return [tenant!, keyId ?? ''];
}

export const keys: Resource = {
  name: 'keys',
  summary: "issue, list and revoke a tenant's API keys",
  subcommands: {
    create: {
      synopsis: '--tenant T [--format table|csv|json]',
      summary: 'issue a new API key (printed once, never again)',
      details: `${TENANT_HELP}${FORMAT_HELP}
Prints the key's id, prefix and the key itself. The control plane keeps only its hash:
store the key now. Proxies accept it within about a second.
`,
      flags: FLAGS,
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        const [tenant] = tenantAnd(args, false);
        const key = await ctx.client().call('POST', apiPath`/v1/tenants/${tenant}/keys`);
        ctx.stdout(renderObject(key as Key, format));
        ctx.stderr('The key is shown only this once; the control plane keeps its hash alone.\n');
      },
    },
    list: {
      synopsis: '--tenant T [--format table|csv|json]',
      summary: "list a tenant's keys (ids and prefixes, never the keys)",
      details: `${TENANT_HELP}${FORMAT_HELP}`,
      flags: FLAGS,
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        const [tenant] = tenantAnd(args, false);
        const page = (await ctx.client().call('GET', apiPath`/v1/tenants/${tenant}/keys`)) as {
          items: Key[];
        };
        ctx.stdout(renderRows(page.items, COLUMNS, format));
      },
    },
    revoke: {
      synopsis: '--tenant T KEY_ID [--format table|csv|json]',
      summary: 'revoke a key (proxies refuse it within about a second)',
      details: `${TENANT_HELP}  KEY_ID                    the key's id (key_…), as keys list shows it
${FORMAT_HELP}
Prints the key with its revoked_at. Revoking a revoked key changes nothing.
`,
      flags: FLAGS,
      async run(args, ctx) {
        const format = formatOf(args.flags.format);
        const [tenant, keyId] = tenantAnd(args, true);
        const key = await ctx.client().call('DELETE', apiPath`/v1/tenants/${tenant}/keys/${keyId}`);
        ctx.stdout(renderObject(key as Key, format));
      },
    },
  },
};
