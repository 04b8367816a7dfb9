/**
 * A small renderer for the subset of Helm's Go templates this chart uses, so tests can look
 * at real manifests on machines without Helm: if/else/with/range/define blocks, variables,
 * pipelines, parenthesised calls, trim markers, and the Helm and Sprig functions listed in
 * FUNCTIONS. It follows text/template's rules where they matter (truthiness, trim markers,
 * `$`, pipelines passing the value as the last argument) but is an approximation: `helm
 * template` stays the reference wherever Helm is installed (charts/test/helm.sh).
 */
import { createHash, randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { tokenize } from './go-template.js';

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; body: string }
  | { kind: 'block'; keyword: 'if' | 'with' | 'range'; arms: { cond?: string; body: Node[] }[] };

/** The whole template set: file and define names to their parsed bodies. */
export type TemplateSet = Map<string, Node[]>;

/** Helm's `fail` and `required`, and any render error, carry the template's message. */
export class RenderError extends Error {}

interface Raw {
  kind: 'text' | 'action';
  text: string;
}

function lex(source: string): Raw[] {
  const out: Raw[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    if (open < 0) {
      out.push({ kind: 'text', text: source.slice(i) });
      break;
    }
    out.push({ kind: 'text', text: source.slice(i, open) });
    let j = open + 2;
    let quote: string | undefined;
    if (source.startsWith('/*', j) || source.startsWith('- /*', j)) j = source.indexOf('*/', j) + 2;
    while (j < source.length) {
      const c = source[j];
      if (quote) {
        if (c === '\\') j++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === '`') quote = c;
      else if (source.startsWith('}}', j)) break;
      j++;
    }
    const inner = source.slice(open + 2, j);
    const trimLeft = inner.startsWith('- ');
    const trimRight = inner.endsWith(' -');
    if (trimLeft) {
      const last = out.at(-1) as Raw;
      last.text = last.text.replace(/\s+$/, '');
    }
    const body = inner.slice(trimLeft ? 2 : 0, trimRight ? -2 : undefined).trim();
    if (!body.startsWith('/*')) out.push({ kind: 'action', text: body });
    i = j + 2;
    if (trimRight) {
      const rest = source.slice(i);
      i += rest.length - rest.replace(/^\s+/, '').length;
    }
  }
  return out;
}

/** Parses every file (and the defines in it) into `set`, keyed by file name and define name. */
export function parseTemplates(files: Map<string, string>): TemplateSet {
  const set: TemplateSet = new Map();
  for (const [name, source] of files) {
    const raws = lex(source);
    let pos = 0;
    const parseList = (stops: string[]): { nodes: Node[]; stop: string } => {
      const nodes: Node[] = [];
      while (pos < raws.length) {
        const raw = raws[pos++] as Raw;
        if (raw.kind === 'text') {
          if (raw.text) nodes.push({ kind: 'text', text: raw.text });
          continue;
        }
        const keyword = raw.text.split(/\s+/)[0] ?? '';
        if (stops.includes(keyword)) return { nodes, stop: raw.text };
        if (keyword === 'define') {
          const defName = JSON.parse(raw.text.slice(6).trim()) as string;
          set.set(defName, parseList(['end']).nodes);
        } else if (keyword === 'if' || keyword === 'with' || keyword === 'range') {
          const arms: { cond?: string; body: Node[] }[] = [];
          let cond: string | undefined = raw.text.slice(keyword.length).trim();
          for (;;) {
            const { nodes: body, stop } = parseList(['else', 'end']);
            arms.push({ cond, body });
            if (stop === 'end' || stop === '') break;
            const elseIf = /^else\s+if\s+(.+)$/.exec(stop);
            cond = elseIf ? elseIf[1] : undefined;
          }
          nodes.push({ kind: 'block', keyword, arms });
        } else nodes.push({ kind: 'action', body: raw.text });
      }
      return { nodes, stop: '' };
    };
    set.set(name, parseList([]).nodes);
  }
  return set;
}

function truthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function mergeOverwrite(dst: Record<string, unknown>, src: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(src)) {
    if (isMap(v) && isMap(dst[k])) mergeOverwrite(dst[k], v);
    else dst[k] = v;
  }
  return dst;
}

const str = (v: unknown): string =>
  v === null || v === undefined
    ? ''
    : typeof v === 'string'
      ? v
      : isMap(v) || Array.isArray(v)
        ? JSON.stringify(v)
        : String(v);
const indentLines = (n: number, s: string) =>
  s
    .split('\n')
    .map((line) => ' '.repeat(n) + line)
    .join('\n');

/** Renders template `name` of `set` with `data` as `.` and `$`. */
export function render(set: TemplateSet, name: string, data: unknown): string {
  const FUNCTIONS: Record<string, (...args: unknown[]) => unknown> = {
    include: (n, ctx) =>
      run(set.get(str(n)) ?? fail(`include: no template "${str(n)}"`), ctx, [new Map([['$', ctx]])]),
    toYaml: (v) =>
      v === undefined || v === null
        ? 'null'
        : stringify(v, { sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, ''),
    toJson: (v) => JSON.stringify(v),
    nindent: (n, s) => `\n${indentLines(Number(n), str(s))}`,
    indent: (n, s) => indentLines(Number(n), str(s)),
    quote: (...v) => v.map((x) => JSON.stringify(str(x))).join(' '),
    default: (d, v) => (truthy(v) ? v : d),
    required: (msg, v) => (truthy(v) ? v : fail(str(msg))),
    fail: (msg) => fail(str(msg)),
    printf: (format, ...args) => {
      let i = 0;
      return str(format).replace(/%[svd%]/g, (m) => (m === '%%' ? '%' : str(args[i++])));
    },
    print: (...args) => args.map(str).join(''),
    trunc: (n, s) => str(s).slice(0, Number(n)),
    trimSuffix: (suffix, s) =>
      str(s).endsWith(str(suffix)) ? str(s).slice(0, -str(suffix).length || undefined) : str(s),
    contains: (sub, s) => str(s).includes(str(sub)),
    replace: (a, b, s) => str(s).replaceAll(str(a), str(b)),
    dict: (...kv) =>
      Object.fromEntries(Array.from({ length: kv.length / 2 }, (_, i) => [str(kv[2 * i]), kv[2 * i + 1]])),
    set: (d, k, v) => Object.assign(d as object, { [str(k)]: v }),
    get: (d, k) => (isMap(d) ? (d[str(k)] ?? '') : ''),
    hasKey: (d, k) => isMap(d) && str(k) in d,
    deepCopy: (v) => structuredClone(v),
    mergeOverwrite: (dst, ...srcs) =>
      srcs.reduce(
        (acc: Record<string, unknown>, s) => mergeOverwrite(acc, s as Record<string, unknown>),
        dst as Record<string, unknown>,
      ),
    b64enc: (s) => Buffer.from(str(s)).toString('base64'),
    b64dec: (s) => Buffer.from(str(s), 'base64').toString('utf8'),
    randAlphaNum: (n) =>
      randomBytes(Number(n))
        .toString('base64')
        .replace(/[^A-Za-z0-9]/g, 'x')
        .slice(0, Number(n)),
    sha256sum: (s) => createHash('sha256').update(str(s)).digest('hex'),
    lookup: () => ({}),
    eq: (a, ...bs) => bs.some((b) => a === b),
    ne: (a, b) => a !== b,
    // Helm's compare numbers of one kind (values are all float64); so do these.
    gt: (a, b) => Number(a) > Number(b),
    int: (v) => Math.trunc(Number(v)),
    not: (v) => !truthy(v),
    and: (...vs) => vs.find((v) => !truthy(v)) ?? vs.at(-1),
    or: (...vs) => vs.find((v) => truthy(v)) ?? vs.at(-1),
    empty: (v) => !truthy(v),
    toString: (v: unknown) => str(v),
    join: (sep, list) => (Array.isArray(list) ? list.map(str).join(str(sep)) : str(list)),
  };
  const fail = (message: string): never => {
    throw new RenderError(message);
  };

  function lookupVar(scopes: Map<string, unknown>[], name: string): unknown {
    for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i]?.has(name)) return scopes[i]?.get(name);
    return fail(`undefined variable ${name}`);
  }

  function field(value: unknown, path: string[]): unknown {
    let v = value;
    for (const key of path) v = isMap(v) ? v[key] : undefined;
    return v;
  }

  function evalPipeline(body: string, dot: unknown, scopes: Map<string, unknown>[]): unknown {
    const tokens = tokenize(body);
    let declare: { name: string; op: string } | undefined;
    if (/^\$\w*$/.test(tokens[0] ?? '') && (tokens[1] === ':=' || tokens[1] === '=')) {
      declare = { name: tokens[0] as string, op: tokens[1] };
      tokens.splice(0, 2);
    }
    let pos = 0;
    const operand = (): unknown => {
      const t = tokens[pos++] as string;
      if (t === '(') {
        const start = pos;
        let depth = 1;
        while (depth > 0) {
          const x = tokens[pos++];
          if (x === '(') depth++;
          if (x === ')') depth--;
        }
        return evalTokens(tokens.slice(start, pos - 1));
      }
      if (t.startsWith('"')) return JSON.parse(t) as string;
      if (/^-?\d/.test(t)) return Number(t);
      if (t === 'true' || t === 'false') return t === 'true';
      if (t === 'nil') return null;
      if (t === '.') return dot;
      if (t.startsWith('.')) return field(dot, t.slice(1).split('.'));
      if (t.startsWith('$')) {
        const [name = '$', ...path] = t.split('.');
        return field(lookupVar(scopes, name), path);
      }
      return { fn: t };
    };
    const evalTokens = (sub: string[]): unknown => {
      const saved = [tokens.splice(0, tokens.length, ...sub), pos] as const;
      pos = 0;
      const value = pipeline();
      tokens.splice(0, tokens.length, ...saved[0]);
      pos = saved[1];
      return value;
    };
    const pipeline = (): unknown => {
      let value: unknown;
      let first = true;
      while (pos < tokens.length) {
        const args: unknown[] = [];
        while (pos < tokens.length && tokens[pos] !== '|') args.push(operand());
        if (tokens[pos] === '|') pos++;
        const head = args[0];
        const isFn = isMap(head) && typeof head.fn === 'string';
        if (!first) args.push(value);
        if (isFn) {
          const fnName = head.fn as string;
          const fn = FUNCTIONS[fnName] ?? fail(`unknown function ${fnName}`);
          value = fn(...args.slice(1));
        } else if (typeof head === 'function')
          value = (head as (...a: unknown[]) => unknown)(...args.slice(1));
        else value = head;
        first = false;
      }
      return value;
    };
    const value = pipeline();
    if (declare) {
      if (declare.op === ':=') scopes.at(-1)?.set(declare.name, value);
      else
        for (let i = scopes.length - 1; i >= 0; i--)
          if (scopes[i]?.has(declare.name)) scopes[i]?.set(declare.name, value);
      return '';
    }
    return value;
  }

  function run(nodes: Node[], dot: unknown, scopes: Map<string, unknown>[]): string {
    let out = '';
    for (const node of nodes) {
      if (node.kind === 'text') out += node.text;
      else if (node.kind === 'action') out += str(evalPipeline(node.body, dot, scopes));
      else {
        for (const arm of node.arms) {
          const value = arm.cond === undefined ? true : evalPipeline(arm.cond, dot, scopes);
          if (!truthy(value)) continue;
          const inner = [...scopes, new Map<string, unknown>()];
          if (node.keyword === 'if') out += run(arm.body, dot, inner);
          else if (node.keyword === 'with') out += run(arm.body, arm.cond === undefined ? dot : value, inner);
          else
            for (const item of Array.isArray(value) ? value : Object.values(value as object))
              out += run(arm.body, item, inner);
          break;
        }
      }
    }
    return out;
  }

  const nodes = set.get(name) ?? fail(`no template ${name}`);
  return run(nodes, data, [new Map([['$', data]])]);
}
