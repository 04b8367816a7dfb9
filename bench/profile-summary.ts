/**
 * Reads a V8 `.cpuprofile` (from `npm run bench -- --profile`) and prints where the time
 * went: the cost of each pipeline stage and of the machinery around them (profile-cost.ts),
 * then self time per function and inclusive time for the functions that matter, as a share
 * of all samples. What the docs' profile tables are made from.
 *
 * Run: `npx tsx bench/profile-summary.ts FILE.cpuprofile [--per-request US] [--top 40] [--filter text]`;
 * `--per-request` is the CPU µs per request the same run measured (the bench table's figure
 * for the profiled target), to print each part in µs per request.
 */
import { readFileSync } from 'node:fs';
import {
  costBreakdown,
  formatCostBreakdown,
  profileIndex,
  type CpuProfile,
  type ProfileNode,
} from './profile-cost.js';

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url
    .replace(/^.*\/(node_modules\/)/, '$1')
    .replace(/^.*\/work\/main\//, '')
    .replace(/^node:/, '');
  return `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
}

function fileOf(node: ProfileNode): string | undefined {
  const url = node.callFrame.url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /\/work\/main\/(.*)$/.exec(url) ?? /^file:\/\/.*?\/((?:proxy|bench)\/.*)$/.exec(url);
  return own ? own[1] : undefined;
}

/**
 * Samples per "owner": walking from the sampled frame towards the root, the first frame in
 * our code (by file) or in a package (by package name). Node's own internals are charged to
 * whoever called them, so `res.write` from server.ts counts as server.ts.
 */
export function byOwner(profile: CpuProfile): Map<string, number> {
  const { byId, parent } = profileIndex(profile);
  const owners = new Map<string, number>();
  for (const id of profile.samples) {
    let owner: string | undefined;
    const leaf = byId.get(id);
    const name = leaf?.callFrame.functionName ?? '';
    if (name === '(idle)' || name === '(garbage collector)' || name === '(program)') owner = name;
    for (let cur: number | undefined = id; owner === undefined && cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (n) owner = fileOf(n);
    }
    owner ??= '(node core: http server, sockets, timers)';
    owners.set(owner, (owners.get(owner) ?? 0) + 1);
  }
  return owners;
}

/** Self and inclusive sample counts per function label. */
export function summarise(profile: CpuProfile): {
  total: number;
  self: Map<string, number>;
  inclusive: Map<string, number>;
} {
  const { byId, parent } = profileIndex(profile);
  const selfCount = new Map<number, number>();
  for (const id of profile.samples) selfCount.set(id, (selfCount.get(id) ?? 0) + 1);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, count] of selfCount) {
    const node = byId.get(id);
    if (!node) continue;
    const name = label(node);
    self.set(name, (self.get(name) ?? 0) + count);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const l = label(n);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + count);
    }
  }
  return { total: profile.samples.length, self, inclusive };
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: profile-summary FILE.cpuprofile [--top N] [--filter text]');
  const topIndex = process.argv.indexOf('--top');
  const top = topIndex >= 0 ? Number(process.argv[topIndex + 1]) : 40;
  const filterIndex = process.argv.indexOf('--filter');
  const filter = filterIndex >= 0 ? process.argv[filterIndex + 1] : undefined;
  const perRequestIndex = process.argv.indexOf('--per-request');
  const perRequest = perRequestIndex >= 0 ? Number(process.argv[perRequestIndex + 1]) : undefined;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const breakdown = costBreakdown(profile);
  process.stdout.write(
    `cost by part (${breakdown.busy} busy samples${perRequest ? `, scaled to ${perRequest} µs per request` : ''})\n` +
      `${formatCostBreakdown(breakdown, perRequest)}\n`,
  );
  const { total, self, inclusive } = summarise(profile);
  const pct = (n: number) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
  process.stdout.on('error', () => process.exit(0));
  const show = (title: string, map: Map<string, number>) => {
    process.stdout.write(`\n${title} (${total} samples)\n`);
    [...map]
      .filter(([name]) => !filter || name.includes(filter))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .forEach(([name, n]) => process.stdout.write(`${pct(n)}  ${name}\n`));
  };
  show('by owner (first frame in our code or a package)', byOwner(profile));
  show('self time', self);
  show('inclusive time', inclusive);
}

main();
