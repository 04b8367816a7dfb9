import { describe, expect, it } from 'vitest';
import {
  costBreakdown,
  formatCostBreakdown,
  unitOf,
  type CpuProfile,
  type ProfileNode,
} from './profile-cost.js';

const BUILD = 'file:///work/main/bench/results/build-current/proxy/src';

/** A profile from a tree of [name, url, samples, children]; ids are assigned depth first. */
type Spec = [string, string, number, Spec[]?];

function profileOf(root: Spec): CpuProfile {
  const nodes: ProfileNode[] = [];
  const samples: number[] = [];
  const add = ([name, url, count, children = []]: Spec): number => {
    const node: ProfileNode = { id: nodes.length + 1, callFrame: { functionName: name, url, lineNumber: 0 } };
    nodes.push(node);
    for (let i = 0; i < count; i++) samples.push(node.id);
    node.children = children.map(add);
    return node.id;
  };
  add(root);
  return { nodes, samples, timeDeltas: samples.map(() => 100) };
}

const PROFILE = profileOf([
  '(root)',
  '',
  0,
  [
    ['(idle)', '', 50],
    ['(garbage collector)', '', 4],
    ['writev', '', 10],
    [
      'run',
      `${BUILD}/server.js`,
      3,
      [
        [
          'onResponseEnd',
          `${BUILD}/stages/meter-usage.js`,
          2,
          [
            ['usageFromJsonBody', `${BUILD}/usage/stream-tap.js`, 1, [['parse', '', 5]]],
            ['record', `${BUILD}/store/memory-meter.js`, 2],
          ],
        ],
        ['write', 'node:_http_outgoing', 4, [['writev', '', 6]]],
        ['dispatch', 'file:///work/main/node_modules/undici/lib/dispatcher/client.js', 7],
      ],
    ],
    ['compileSourceTextModule', 'node:internal/modules/esm/utils', 30, [['parse', '', 30]]],
  ],
]);

describe('costBreakdown', () => {
  const breakdown = costBreakdown(PROFILE);
  const part = (name: string) => breakdown.parts.find((p) => p.part === name);

  it('leaves out idle time and module loading at start-up', () => {
    expect(breakdown.busy).toBe(4 + 10 + 3 + 2 + 1 + 5 + 2 + 4 + 6 + 7);
  });

  it('charges everything under a stage to that stage, split by what ran inside it', () => {
    const meter = part('stage meter-usage');
    expect(meter?.samples).toBe(2 + 1 + 5 + 2);
    expect(meter?.within.get('own code')).toBe(2);
    // JSON.parse has no file: it is charged to the module of ours that called it.
    expect(meter?.within.get('usage/stream-tap.ts')).toBe(6);
    expect(meter?.within.get('store/memory-meter.ts')).toBe(2);
  });

  it('counts socket system calls apart, wherever they were made from', () => {
    expect(part('socket writes (system calls)')?.samples).toBe(16);
  });

  it('charges Node internals outside the stages to the module of ours that called them', () => {
    const server = part('proxy server.ts');
    expect(server?.samples).toBe(3 + 4);
    expect(server?.within.get('own code')).toBe(3);
    expect(server?.within.get('node and V8 built-ins it called')).toBe(4);
    expect(part('undici')?.samples).toBe(7);
    expect(part('garbage collection')?.samples).toBe(4);
  });

  it('orders the parts by cost and scales shares to microseconds per request', () => {
    expect(breakdown.parts.map((p) => p.samples)).toEqual(
      [...breakdown.parts.map((p) => p.samples)].sort((a, b) => b - a),
    );
    const text = formatCostBreakdown(breakdown, 200);
    // 16 of 44 busy samples at 200 µs per request.
    expect(text).toContain(` 36.4%   72.7 µs  socket writes (system calls)`);
    expect(text).toContain('usage/stream-tap.ts');
  });
});

describe('unitOf', () => {
  it('names our modules by source file, packages by name, and nothing for Node internals', () => {
    expect(unitOf(`${BUILD}/store/redis.js`)).toBe('store/redis.ts');
    expect(unitOf('file:///work/main/proxy/src/server.ts')).toBe('server.ts');
    expect(unitOf('file:///x/node_modules/@qdrant/js-client-rest/dist/index.js')).toBe(
      '@qdrant/js-client-rest',
    );
    expect(unitOf('node:_http_server')).toBeUndefined();
  });
});
