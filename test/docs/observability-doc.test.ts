/**
 * docs/observability.md against the code it describes: every Lanekeeper metric the proxy
 * registers is documented and every metric the page names exists; the alerts it lists are
 * the chart's; its values example passes the chart's schema and turns the rules on; the
 * README links it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  coalesce,
  compileValuesSchema,
  defaultValues,
  REPO_ROOT,
  type Tree,
} from '../../charts/test/chart.js';
import { exportedMetricNames, referencedMetrics } from '../../charts/test/exported-metrics.js';
import { renderManifests } from '../../charts/test/render-chart.js';
import { parseYamlConfig } from '../../proxy/src/config/load.js';
import { parseConfig } from '../../proxy/src/config/schema.js';

const doc = readFileSync(join(REPO_ROOT, 'docs/observability.md'), 'utf8');

/** The ```yaml blocks of the page. */
const yamlBlocks = [...doc.matchAll(/^```yaml\n([\s\S]*?)^```/gm)].map((m) => parse(m[1] ?? '') as Tree);

describe('docs/observability.md', () => {
  it('documents every lanekeeper_ metric, and names only metrics the proxy exports', async () => {
    const exported = await exportedMetricNames();
    const named = new Set(referencedMetrics(doc));
    const missing = [...exported].filter((name) => name.startsWith('lanekeeper_') && !named.has(name));
    // Histogram series (_bucket/_sum/_count) are documented under the histogram's name.
    expect(missing.filter((name) => !/_(bucket|sum|count)$/.test(name))).toEqual([]);
    expect([...named].filter((name) => !exported.has(name))).toEqual([]);
  });

  it("lists exactly the chart's alerts", () => {
    const [rule] = renderManifests({ prometheusRule: { enabled: true } }).filter(
      (m) => m.kind === 'PrometheusRule',
    );
    const alerts = (rule?.spec as { groups: { rules: { alert: string }[] }[] }).groups.flatMap((g) =>
      g.rules.map((r) => r.alert),
    );
    const documented = new Set(doc.match(/\bLanekeeper[A-Z]\w+/g));
    expect([...documented].sort()).toEqual([...alerts].sort());
  });

  it('has values examples the chart accepts, one of which turns the alert rules on', () => {
    const validate = compileValuesSchema();
    const valuesBlocks = yamlBlocks.filter((b) => !('telemetry' in b));
    expect(valuesBlocks.length).toBeGreaterThanOrEqual(2);
    for (const block of valuesBlocks) {
      expect(validate(coalesce(defaultValues(), block)), JSON.stringify(validate.errors)).toBe(true);
    }
    const alerting = yamlBlocks.find((b) => 'prometheusRule' in b) ?? {};
    expect(renderManifests(alerting).some((m) => m.kind === 'PrometheusRule')).toBe(true);
  });

  it('has proxy config examples for tracing that the proxy accepts', () => {
    const example = parseYamlConfig(readFileSync(join(REPO_ROOT, 'examples/lanekeeper.yaml'), 'utf8'));
    const tracing = yamlBlocks.filter((b) => 'telemetry' in b);
    expect(tracing.length).toBeGreaterThanOrEqual(1);
    for (const block of tracing) {
      expect(parseConfig({ ...example, ...block }).telemetry).toBeDefined();
    }
  });

  it('keeps a Traces section, and the README links the page', () => {
    expect(doc).toMatch(/^## Traces\n\n\S.*\n/m);
    expect(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')).toContain('](docs/observability.md)');
  });
});
