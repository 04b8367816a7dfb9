/**
 * Every PromQL expression of the Grafana dashboard (charts/lanekeeper/dashboards/lanekeeper.json)
 * parses under Prometheus' own parser (`promtool check rules`, each expression as a recording
 * rule once Grafana's variables are filled in) and reads only metrics the proxy exports.
 * The health panels (upstreams, fallbacks, the store, the event loop) must be there.
 *
 * Without promtool (Debian's `prometheus` package, charts/test/ensure-prometheus.sh) the parse
 * check is skipped visibly on a developer machine and fails in CI.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { REPO_ROOT } from './chart.js';
import { exportedMetricNames, referencedMetrics } from './exported-metrics.js';

const installed = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;
if (!installed && process.env.CI) {
  throw new Error('promtool is missing: run charts/test/ensure-prometheus.sh before the tests');
}

interface Panel {
  id: number;
  title: string;
  targets: { refId: string; expr: string }[];
}
const dashboard = JSON.parse(
  readFileSync(join(REPO_ROOT, 'charts/lanekeeper/dashboards/lanekeeper.json'), 'utf8'),
) as { panels: Panel[]; templating: { list: { name: string; definition?: string }[] } };

/** What Grafana puts in place of its variables before the query reaches Prometheus. */
const GRAFANA_VARIABLES: [RegExp, string][] = [
  [/\$tenant\b/g, '.*'],
  [/\$__rate_interval\b/g, '1m'],
  [/\$__interval\b/g, '30s'],
  [/\$__range\b/g, '6h'],
];

function asPrometheusSees(expr: string): string {
  return GRAFANA_VARIABLES.reduce((text, [pattern, value]) => text.replace(pattern, value), expr);
}

const targets = dashboard.panels.flatMap((panel) =>
  panel.targets.map((target) => ({ panel: panel.title, id: panel.id, ...target })),
);
const variableQueries = dashboard.templating.list.flatMap((v) => (v.definition ? [v.definition] : []));

describe('the dashboard queries', () => {
  it('have the health panels: upstreams, fallbacks, store errors and event-loop lag', () => {
    const metricsOf = (title: string) =>
      dashboard.panels
        .filter((p) => p.title.startsWith(title))
        .flatMap((p) => p.targets.flatMap((t) => referencedMetrics(t.expr)));
    expect(metricsOf('Upstreams up')).toContain('lanekeeper_upstream_up');
    expect(metricsOf('Upstream calls by status')).toEqual(
      expect.arrayContaining(['lanekeeper_upstream_requests_total', 'lanekeeper_upstream_retries_total']),
    );
    expect(metricsOf('Fallbacks')).toContain('lanekeeper_fallbacks_total');
    expect(metricsOf('Store health')).toEqual(
      expect.arrayContaining([
        'lanekeeper_store_up',
        'lanekeeper_store_errors_total',
        'lanekeeper_meter_buffer_events',
        'lanekeeper_meter_events_dropped_total',
      ]),
    );
    expect(metricsOf('Event-loop lag')).toContain('nodejs_eventloop_lag_seconds');
    expect(metricsOf('Day budget used')).toEqual(['lanekeeper_cost_usd_total', 'lanekeeper_budget_usd']);
  });

  it('have unique panel ids and refIds, and every Grafana variable they use is filled in', () => {
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const panel of dashboard.panels) {
      expect(new Set(panel.targets.map((t) => t.refId)).size, panel.title).toBe(panel.targets.length);
    }
    for (const target of targets) expect(asPrometheusSees(target.expr), target.panel).not.toContain('$');
  });

  it('read only metrics the proxy exports (process metrics unprefixed)', async () => {
    const exported = await exportedMetricNames();
    expect(exported).toContain('nodejs_eventloop_lag_seconds');
    expect(exported).not.toContain('lanekeeper_nodejs_eventloop_lag_seconds');
    const used = [...targets.map((t) => t.expr), ...variableQueries].flatMap(referencedMetrics);
    expect(used.length).toBeGreaterThan(targets.length - 1);
    expect(used.filter((name) => !exported.has(name))).toEqual([]);
  });

  describe.skipIf(!installed)('under promtool', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-dashboard-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    function checkRules(rules: { record: string; expr: string }[]): {
      status: number | null;
      output: string;
    } {
      const path = join(dir, 'rules.yaml');
      writeFileSync(path, stringify({ groups: [{ name: 'dashboard', rules }] }));
      const result = spawnSync('promtool', ['check', 'rules', path], { encoding: 'utf8', timeout: 60_000 });
      return { status: result.status, output: `${result.stdout}${result.stderr}` };
    }

    it('parse, every one of them', () => {
      const rules = targets.map((t) => ({
        record: `dashboard:panel_${t.id}:${t.refId.toLowerCase()}`,
        expr: asPrometheusSees(t.expr),
      }));
      const result = checkRules(rules);
      expect(result.output).toContain(`SUCCESS: ${rules.length} rules found`);
      expect(result.status).toBe(0);
    });

    it('would be caught if one did not parse', () => {
      const result = checkRules([
        { record: 'dashboard:ok', expr: 'sum(lanekeeper_store_up)' },
        { record: 'dashboard:broken', expr: 'sum by (tenant (rate(lanekeeper_cost_usd_total[5m]))' },
      ]);
      expect(result.status).not.toBe(0);
    });
  });
});
