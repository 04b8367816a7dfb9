/**
 * The chart renderer against text/template's documented behaviour, so render.test.ts
 * judges the chart and not a quirk of the renderer.
 */
import { describe, expect, it } from 'vitest';
import { parseTemplates, render, RenderError } from './go-template-render.js';

const run = (source: string, data: unknown = {}, defines = '') =>
  render(
    parseTemplates(
      new Map([
        ['t', source],
        ['d', defines],
      ]),
    ),
    't',
    data,
  );

describe('render', () => {
  it.each([
    ['trim markers eat the whitespace on their side only', 'a  {{- "b" -}}  c', 'abc'],
    ['a comment renders nothing and can trim', 'a\n{{- /* note */}}\nb', 'a\nb'],
    [
      'if / else if / else picks the first true arm',
      '{{ if .x }}x{{ else if .y }}y{{ else }}z{{ end }}',
      'y',
    ],
    [
      'empty maps, lists, strings and zero are false',
      '{{ if .m }}1{{ end }}{{ if .l }}2{{ end }}{{ if .s }}3{{ end }}{{ if .z }}4{{ end }}|',
      '|',
    ],
    ['with rebinds the dot, and $ stays the root', '{{ with .a }}{{ .b }}{{ $.y }}{{ end }}', '2yes'],
    ['a pipeline passes its value as the last argument', '{{ "a" | printf "%s-%s" "b" }}', 'b-a'],
    [
      'default keeps a non-empty value and replaces an empty one',
      '{{ .s | default "d" }}{{ .y | default "d" }}',
      'dyes',
    ],
    [
      'a variable set inside a block changes the outer one',
      '{{ $v := 1 }}{{ if true }}{{ $v = 2 }}{{ end }}{{ $v }}',
      '2',
    ],
    [
      'a variable declared inside a block does not leak',
      '{{ $v := 1 }}{{ if true }}{{ $v := 2 }}{{ $v }}{{ end }}{{ $v }}',
      '21',
    ],
    ['nindent starts a new line and indents every line', 'k:{{ "a\\nb" | nindent 2 }}', 'k:\n  a\n  b'],
    ['toYaml sorts keys as Helm does', '{{ toYaml .a }}', 'b: 2\nc: 3'],
    ['quote turns numbers into YAML strings', '{{ .n | quote }}', '"50"'],
    ["join puts the separator between a list's items", '{{ join "," .p }}|{{ join "," .l }}', 'a,b|'],
    ['toString writes a boolean as Helm does', '{{ toString .x | quote }}', '"false"'],
  ])('%s', (_name, source, expected) => {
    const data = { m: {}, l: [], s: '', z: 0, x: false, y: 'yes', a: { c: 3, b: 2 }, n: 50, p: ['a', 'b'] };
    expect(run(source, data)).toBe(expected);
  });

  it('include renders a define with the given dot', () => {
    expect(
      run(
        '[{{ include "greet" (dict "who" .name) }}]',
        { name: 'acme' },
        '{{- define "greet" -}}hi {{ .who }}{{- end -}}',
      ),
    ).toBe('[hi acme]');
  });

  it('fail and required raise RenderError with the message', () => {
    expect(() => run('{{ fail "set x" }}')).toThrow(new RenderError('set x'));
    expect(() => run('{{ required "x is required" .x }}', { x: '' })).toThrow('x is required');
  });

  it('refuses a function Helm does not have', () => {
    expect(() => run('{{ nident 2 "a" }}')).toThrow('unknown function nident');
  });
});
