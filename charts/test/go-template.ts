/**
 * A small static checker for Helm's Go templates, for machines without the helm binary.
 * It lexes `{{ ... }}` actions the way text/template does (comments, trim markers, string
 * literals that may contain braces), then checks what a renderer would trip over first:
 * unterminated actions, unbalanced if/range/with/define ... end blocks, stray else/end,
 * unbalanced parentheses, calls to functions Helm does not have, include/template calls
 * to names no file defines, and the `.Values` paths each template reads. It does not
 * render: `helm lint` and `helm template` still run wherever Helm is installed.
 */

/** One `{{ ... }}` action: its text without delimiters, trim markers or comments. */
export interface Action {
  /** The action body, trimmed, e.g. `include "lanekeeper.labels" . | nindent 4`. */
  body: string;
  /** 1-based line of the opening `{{`. */
  line: number;
}

/** A problem the checker found, with the line it starts on. */
export interface TemplateProblem {
  line: number;
  message: string;
}

/** Functions a Helm 3 chart may call: Go's builtins, Helm's own, and the Sprig ones we use or might. */
export const KNOWN_FUNCTIONS: ReadonlySet<string> = new Set([
  // text/template builtins
  'and',
  'or',
  'not',
  'len',
  'index',
  'slice',
  'print',
  'printf',
  'println',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'call',
  'html',
  'js',
  'urlquery',
  // Helm
  'include',
  'tpl',
  'required',
  'lookup',
  'toYaml',
  'fromYaml',
  'fromYamlArray',
  'toJson',
  'fromJson',
  'fromJsonArray',
  'toToml',
  'fail',
  // Sprig (strings, defaults, dicts, lists, encoding, crypto, math)
  'default',
  'empty',
  'coalesce',
  'ternary',
  'quote',
  'squote',
  'trim',
  'trimAll',
  'trimPrefix',
  'trimSuffix',
  'trunc',
  'upper',
  'lower',
  'title',
  'replace',
  'contains',
  'hasPrefix',
  'hasSuffix',
  'indent',
  'nindent',
  'nospace',
  'repeat',
  'substr',
  'cat',
  'join',
  'split',
  'splitList',
  'toString',
  'toStrings',
  'int',
  'int64',
  'float64',
  'atoi',
  'add',
  'add1',
  'sub',
  'mul',
  'div',
  'mod',
  'max',
  'min',
  'dict',
  'get',
  'set',
  'unset',
  'hasKey',
  'pluck',
  'keys',
  'pick',
  'omit',
  'merge',
  'mergeOverwrite',
  'deepCopy',
  'list',
  'append',
  'prepend',
  'first',
  'last',
  'rest',
  'initial',
  'uniq',
  'has',
  'without',
  'compact',
  'sortAlpha',
  'until',
  'b64enc',
  'b64dec',
  'sha256sum',
  'randAlphaNum',
  'kindIs',
  'typeOf',
  'kindOf',
  'semverCompare',
  'regexMatch',
  'regexReplaceAll',
  'toDecimal',
  'now',
  'date',
  'uuidv4',
  'ceil',
  'floor',
  'round',
]);

const KEYWORDS = new Set([
  'if',
  'else',
  'end',
  'range',
  'with',
  'define',
  'block',
  'template',
  'break',
  'continue',
]);
const BLOCK_OPENERS = new Set(['if', 'range', 'with', 'define', 'block']);
const LITERALS = new Set(['true', 'false', 'nil']);

/** Splits a template into actions; unterminated actions and comments become problems. */
export function lexActions(text: string): { actions: Action[]; problems: TemplateProblem[] } {
  const actions: Action[] = [];
  const problems: TemplateProblem[] = [];
  let i = 0;
  const lineAt = (pos: number) => text.slice(0, pos).split('\n').length;
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    if (open < 0) break;
    let j = open + 2;
    if (text[j] === '-' && /\s/.test(text[j + 1] ?? '')) j += 2;
    while (/\s/.test(text[j] ?? '')) j++;
    if (text.startsWith('/*', j)) {
      const close = text.indexOf('*/', j + 2);
      const after = close < 0 ? -1 : text.slice(close + 2).search(/\S/);
      const rest = close < 0 ? '' : text.slice(close + 2 + Math.max(after, 0));
      if (close < 0 || !(rest.startsWith('}}') || rest.startsWith('-}}'))) {
        problems.push({ line: lineAt(open), message: 'comment is not closed with */}}' });
        break;
      }
      i = close + 2 + after + (rest.startsWith('-') ? 3 : 2);
      continue;
    }
    let k = j;
    let quote: string | undefined;
    let end = -1;
    while (k < text.length) {
      const c = text[k];
      if (quote) {
        if (c === '\\' && quote !== '`') k++;
        else if (c === quote) quote = undefined;
        else if (c === '\n' && quote !== '`') break;
      } else if (c === '"' || c === '`' || c === "'") quote = c;
      else if (text.startsWith('}}', k)) {
        end = k;
        break;
      }
      k++;
    }
    if (end < 0) {
      problems.push({
        line: lineAt(open),
        message: quote ? 'unterminated string in action' : 'action is not closed with }}',
      });
      break;
    }
    let body = text.slice(j, end);
    if (/\s-$/.test(body)) body = body.slice(0, -1);
    actions.push({ body: body.trim(), line: lineAt(open) });
    i = end + 2;
  }
  return { actions, problems };
}

/** Tokens of an action body: strings, variables, fields, identifiers, numbers and punctuation. */
export function tokenize(body: string): string[] {
  const pattern =
    /"(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)'|:=|[()|,=]|\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*|\.?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*|\.|-?[0-9][0-9.eE+-]*|\S/g;
  return body.match(pattern) ?? [];
}

/** Names declared with {{ define "name" }} (or block) in a template file. */
export function definedTemplates(text: string): string[] {
  return lexActions(text)
    .actions.map((a) => /^(?:define|block)\s+"([^"]+)"/.exec(a.body)?.[1])
    .filter((name): name is string => name !== undefined);
}

/** Names a template file calls with include "name" or template "name". */
export function calledTemplates(text: string): string[] {
  const names: string[] = [];
  for (const action of lexActions(text).actions) {
    const tokens = tokenize(action.body);
    tokens.forEach((token, i) => {
      const next = tokens[i + 1];
      if ((token === 'include' || token === 'template') && next?.startsWith('"'))
        names.push(JSON.parse(next) as string);
    });
  }
  return names;
}

/**
 * Checks one template file. `knownTemplates` are the names defined anywhere in the chart.
 * Returns every problem found (empty when the file looks renderable).
 */
export function checkTemplate(text: string, knownTemplates: ReadonlySet<string>): TemplateProblem[] {
  const { actions, problems } = lexActions(text);
  const stack: { keyword: string; line: number }[] = [];
  for (const { body, line } of actions) {
    const tokens = tokenize(body);
    const first = tokens[0];
    if (first === undefined) {
      problems.push({ line, message: 'empty action {{ }}' });
      continue;
    }
    if (first === 'end') {
      if (tokens.length > 1) problems.push({ line, message: '"end" takes no arguments' });
      if (stack.pop() === undefined)
        problems.push({ line, message: '"end" without an open if/range/with/define' });
      continue;
    }
    if (first === 'else') {
      const top = stack[stack.length - 1];
      if (!top || !['if', 'range', 'with'].includes(top.keyword)) {
        problems.push({ line, message: '"else" outside an if/range/with block' });
      }
    }
    if (BLOCK_OPENERS.has(first)) {
      if ((first === 'define' || first === 'block') && !tokens[1]?.startsWith('"')) {
        problems.push({ line, message: `"${first}" needs a quoted template name` });
      }
      if (first === 'define' && stack.length > 0)
        problems.push({ line, message: '"define" inside another block' });
      if (tokens.length === 1) problems.push({ line, message: `"${first}" needs an argument` });
      stack.push({ keyword: first, line });
    }
    let depth = 0;
    tokens.forEach((token, i) => {
      if (token === '(') depth++;
      if (token === ')') depth--;
      if (depth < 0) problems.push({ line, message: 'unbalanced ")"' });
      const previous = tokens[i - 1];
      const commandStart =
        i === 0 ||
        previous === '|' ||
        previous === '(' ||
        previous === ':=' ||
        previous === '=' ||
        (i === 1 && KEYWORDS.has(tokens[0] ?? '')) ||
        (i === 2 && tokens[0] === 'else' && KEYWORDS.has(tokens[1] ?? ''));
      if (
        commandStart &&
        /^[A-Za-z_]\w*$/.test(token) &&
        !KEYWORDS.has(token) &&
        !LITERALS.has(token) &&
        !KNOWN_FUNCTIONS.has(token)
      ) {
        problems.push({ line, message: `unknown function "${token}"` });
      }
      if ((token === 'include' || token === 'template') && i + 1 < tokens.length) {
        const name = tokens[i + 1] ?? '';
        if (!name.startsWith('"')) {
          if (!name.startsWith('(') && !name.startsWith('$'))
            problems.push({ line, message: `${token} needs a template name` });
        } else if (!knownTemplates.has(JSON.parse(name) as string)) {
          problems.push({ line, message: `${token} calls undefined template ${name}` });
        }
      }
    });
    if (depth > 0) problems.push({ line, message: 'unbalanced "("' });
  }
  for (const open of stack)
    problems.push({ line: open.line, message: `"${open.keyword}" is never closed with {{ end }}` });
  return problems;
}

/**
 * Every `.Values` path a template reads, as dotted strings ("proxy.autoscaling.minReplicas").
 * Variables bound to a Values subtree (`$as := .Values.proxy.autoscaling`, or the helper
 * idiom `$v := .values | default .root.Values`) are followed, so `$as.minReplicas` counts.
 */
export function valuesPaths(text: string): string[] {
  const aliases = new Map<string, string>();
  const paths = new Set<string>();
  for (const { body } of lexActions(text).actions) {
    const assignment = /^(?:[a-z]+\s+)?\$([A-Za-z0-9_]+)\s*:?=\s*(.+)$/.exec(body);
    if (assignment) {
      const [, name, expr] = assignment as unknown as [string, string, string];
      const fromValues = /^(?:\.values\s*\|\s*default\s+)?\.(?:root\.)?Values((?:\.\w+)*)$/.exec(expr.trim());
      const fromAlias = /^\$(\w+)((?:\.\w+)+)$/.exec(expr.trim());
      if (fromValues) aliases.set(name, (fromValues[1] ?? '').replace(/^\./, ''));
      else if (fromAlias && aliases.has(fromAlias[1] ?? '')) {
        aliases.set(name, join(aliases.get(fromAlias[1] ?? '') ?? '', (fromAlias[2] ?? '').slice(1)));
      }
    }
    for (const token of tokenize(body)) {
      const direct = /^(?:\.root|\$)?\.Values((?:\.\w+)+)$/.exec(token);
      if (direct) paths.add((direct[1] ?? '').slice(1));
      const viaAlias = /^\$(\w+)((?:\.\w+)+)$/.exec(token);
      if (viaAlias && aliases.has(viaAlias[1] ?? '')) {
        paths.add(join(aliases.get(viaAlias[1] ?? '') ?? '', (viaAlias[2] ?? '').slice(1)));
      }
    }
  }
  return [...paths].sort();
}

function join(prefix: string, rest: string): string {
  return prefix ? `${prefix}.${rest}` : rest;
}
