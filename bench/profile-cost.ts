/**
 * Where a request's CPU time goes, read off a V8 CPU profile of Lanekeeper under load: each
 * busy sample is charged to the pipeline stage on its stack (the innermost one), or, outside
 * every stage, to the part of the proxy or the runtime it ran in. With the CPU time per
 * request from the same run, the shares become microseconds per request: the figures behind
 * "what stands in the way" in docs/performance.md.
 *
 * Within a stage, the sample's own unit says what the stage was doing (its own code, a store,
 * the usage parsers, prom-client, Node's JSON or buffers).
 */

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Samples charged to one part, and to what ran inside it. */
export interface CostPart {
  part: string;
  samples: number;
  within: Map<string, number>;
}

export interface CostBreakdown {
  /** Samples that were not idle: the denominator of every share. */
  busy: number;
  parts: CostPart[];
}

const STAGE = /\/proxy\/(?:src|dist)\/stages\/([a-z-]+)\.[jt]s$/;
const OWN = /\/proxy\/(?:src|dist)\/(.+)\.[jt]s$/;
const PACKAGE = /node_modules\/((?:@[^/]+\/)?[^/]+)/;
/** Frames of Node's module loader: the sample is start-up, not serving. */
const MODULE_LOADING = /^node:internal\/modules\//;
/** Native leaves that are the socket system calls themselves: kernel time the floor pays too. */
const SOCKET_CALLS = new Set(['writev', 'writeBuffer', 'writeLatin1String', 'writeUtf8String']);

/**
 * The unit a frame belongs to: one of our modules (`server.ts`, `store/memory.ts`, named by
 * its source file even when the profile ran the compiled build), a package (`undici`), or
 * undefined for Node's and V8's own code.
 */
export function unitOf(url: string): string | undefined {
  const own = OWN.exec(url);
  if (own) return `${own[1]}.ts`;
  const pkg = PACKAGE.exec(url);
  return pkg ? pkg[1] : undefined;
}

/** A profile's nodes by id and each node's parent id: what every walk up a sample's stack needs. */
export function profileIndex(profile: CpuProfile): {
  byId: Map<number, ProfileNode>;
  parent: Map<number, number>;
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  return { byId, parent };
}

/** Charges every busy sample of `profile` to a part, most expensive part first. */
export function costBreakdown(profile: CpuProfile): CostBreakdown {
  const { byId, parent } = profileIndex(profile);
  const parts = new Map<string, CostPart>();
  let busy = 0;
  const charge = (part: string, within: string) => {
    const entry = parts.get(part) ?? { part, samples: 0, within: new Map<string, number>() };
    entry.samples++;
    entry.within.set(within, (entry.within.get(within) ?? 0) + 1);
    parts.set(part, entry);
  };
  for (const id of profile.samples) {
    const leaf = byId.get(id);
    if (!leaf) continue;
    const leafName = leaf.callFrame.functionName;
    if (leafName === '(idle)') continue;
    busy++;
    if (leafName === '(garbage collector)') {
      charge('garbage collection', '-');
      continue;
    }
    if (leafName === '(program)') {
      charge('V8 and native, unattributed', '-');
      continue;
    }
    let innermostUnit: string | undefined;
    let stage: string | undefined;
    let startup = false;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const url = byId.get(cur)?.callFrame.url ?? '';
      if (MODULE_LOADING.test(url)) startup = true;
      if (!stage) innermostUnit ??= unitOf(url);
      const stageMatch = STAGE.exec(url);
      if (stageMatch) stage ??= stageMatch[1];
    }
    if (startup) {
      // Loading and evaluating modules at start-up is no request's cost.
      busy--;
      continue;
    }
    const within = SOCKET_CALLS.has(leafName) ? 'socket writes' : (innermostUnit ?? 'node and V8 built-ins');
    if (stage) charge(`stage ${stage}`, within === `stages/${stage}.ts` ? 'own code' : within);
    else if (SOCKET_CALLS.has(leafName)) charge('socket writes (system calls)', '-');
    else if (innermostUnit === undefined) charge('node:http server, sockets, timers', '-');
    else
      charge(
        innermostUnit.endsWith('.ts') ? `proxy ${innermostUnit}` : innermostUnit,
        unitOf(leaf.callFrame.url) === innermostUnit ? 'own code' : 'node and V8 built-ins it called',
      );
  }
  return { busy, parts: [...parts.values()].sort((a, b) => b.samples - a.samples) };
}

/**
 * The breakdown as text: each part's share of busy samples and, given the CPU time per
 * request measured in the same run, its microseconds per request.
 */
export function formatCostBreakdown(
  breakdown: CostBreakdown,
  usPerRequest?: number,
  minShare = 0.005,
): string {
  const lines: string[] = [];
  const cell = (n: number) => {
    const share = n / breakdown.busy;
    const us = usPerRequest === undefined ? '' : `${(share * usPerRequest).toFixed(1).padStart(7)} µs`;
    return `${(share * 100).toFixed(1).padStart(5)}%${us}`;
  };
  for (const part of breakdown.parts) {
    if (part.samples / breakdown.busy < minShare) continue;
    lines.push(`${cell(part.samples)}  ${part.part}`);
    if (part.within.size < 2 && part.within.has('-')) continue;
    for (const [within, n] of [...part.within].sort((a, b) => b[1] - a[1])) {
      if (n / breakdown.busy < minShare) continue;
      lines.push(`${cell(n)}      ${within}`);
    }
  }
  return lines.join('\n');
}
