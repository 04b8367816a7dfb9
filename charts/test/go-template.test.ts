/**
 * The Go-template checker itself: it must find the mistakes it exists to catch, or the
 * chart tests that rely on it would pass vacuously.
 */
import { describe, expect, it } from 'vitest';
import { calledTemplates, checkTemplate, definedTemplates, lexActions, valuesPaths } from './go-template.js';

const known = new Set(['app.labels']);
const messages = (text: string) => checkTemplate(text, known).map((p) => p.message);

describe('checkTemplate', () => {
  it('accepts balanced blocks, comments, trim markers and braces inside strings', () => {
    const text = [
      '{{- /* a comment with {{ braces }} */ -}}',
      '{{- if .Values.a }}',
      'a: {{ "}}" }}',
      '{{- else if .Values.b }}',
      '{{- range $i, $x := .Values.list }}{{ $x | quote }}{{ end }}',
      '{{- else }}',
      '{{- with .Values.c }}{{ toYaml . | nindent 2 }}{{ end }}',
      '{{- end }}',
      '{{ include "app.labels" . }}',
    ].join('\n');
    expect(messages(text)).toEqual([]);
  });

  it.each([
    ['an if that is never closed', '{{ if .Values.a }}x', '"if" is never closed with {{ end }}'],
    ['an end without an opener', 'x{{ end }}', '"end" without an open if/range/with/define'],
    ['an else outside a block', '{{ else }}', '"else" outside an if/range/with block'],
    ['an action that is never closed', 'a: {{ .Values.a ', 'action is not closed with }}'],
    ['a comment that is never closed', '{{/* oops }}', 'comment is not closed with */}}'],
    ['an unbalanced parenthesis', '{{ include "app.labels" (dict "a" 1 }}', 'unbalanced "("'],
    ['a misspelt function', '{{ toYaml . | nident 4 }}', 'unknown function "nident"'],
    [
      'a call to an undefined template',
      '{{ include "app.lables" . }}',
      'include calls undefined template "app.lables"',
    ],
    [
      'a define nested in a block',
      '{{ if true }}{{ define "x" }}{{ end }}{{ end }}',
      '"define" inside another block',
    ],
  ])('reports %s', (_name, text, message) => {
    expect(messages(text)).toContain(message);
  });

  it('reports the line of the problem', () => {
    expect(checkTemplate('a\nb\n{{ if .x }}', known)).toEqual([
      { line: 3, message: '"if" is never closed with {{ end }}' },
    ]);
  });
});

describe('template names and values paths', () => {
  it('lists defined and called templates', () => {
    const text = '{{ define "a.b" }}{{ include "c.d" . }}{{ template "e.f" . }}{{ end }}';
    expect(definedTemplates(text)).toEqual(['a.b']);
    expect(calledTemplates(text)).toEqual(['c.d', 'e.f']);
  });

  it('follows variables bound to Values subtrees', () => {
    const text = [
      '{{ $as := .Values.proxy.autoscaling }}{{ $as.minReplicas }}',
      '{{ $v := .values | default .root.Values }}{{ $v.proxy.port }}',
      '{{ $img := $v.image.proxy }}{{ $img.tag }}',
      '{{ $.Values.mode }}{{ .root.Values.image.registry }}',
    ].join('\n');
    expect(valuesPaths(text)).toEqual([
      'image.proxy',
      'image.proxy.tag',
      'image.registry',
      'mode',
      'proxy.autoscaling',
      'proxy.autoscaling.minReplicas',
      'proxy.port',
    ]);
  });

  it('does not count text outside actions', () => {
    expect(lexActions('plain .Values.text and {{ .Values.real }}').actions).toEqual([
      { body: '.Values.real', line: 1 },
    ]);
  });
});
