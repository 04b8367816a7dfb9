/**
 * The files that ship without templating: the Grafana dashboard, the example and ci values,
 * the compose-side Prometheus and proxy configs. Each parses, and each refers to metrics,
 * labels, services and config keys that really exist.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../proxy/src/metrics.js';
import { parseYamlConfig } from '../../proxy/src/config/load.js';
import { parseConfig } from '../../proxy/src/config/schema.js';
import { REPO_ROOT, coalesce, defaultValues, readYaml, type Tree } from './chart.js';

interface Panel {
  title: string;
  type: string;
  targets: { expr: string }[];
}

const dashboard = JSON.parse(
  readFileSync(join(REPO_ROOT, 'charts/lanekeeper/dashboards/lanekeeper.json'), 'utf8'),
) as {
  title: string;
  uid: string;
  panels: Panel[];
};
const metrics = new Metrics(10);
type Named = { name: string; labelNames?: readonly string[] };
// Every metric the proxy registers, with its label names, so any panel may use any of them.
const declared = new Map<string, Named>(
  metrics.registry.getMetricsAsArray().map((m) => [(m as unknown as Named).name, m as unknown as Named]),
);
const exprOf = (title: string) =>
  dashboard.panels.find((p) => p.title.startsWith(title))?.targets.map((t) => t.expr) ?? [];

describe('Grafana dashboard', () => {
  it('parses and has a stable uid', () => {
    expect(dashboard.title).toBe('Lanekeeper');
    expect(dashboard.uid).toBe('lanekeeper-overview');
  });

  it('shows cost per tenant as the rate of lanekeeper_cost_usd_total', () => {
    expect(exprOf('Cost per tenant')).toEqual([
      'sum by (tenant) (rate(lanekeeper_cost_usd_total{tenant=~"$tenant"}[5m]))',
    ]);
  });

  it('shows tokens per tenant and model, rate-limited requests and latency percentiles', () => {
    expect(exprOf('Tokens per tenant and model')[0]).toMatch(
      /^sum by \(tenant, model\) \(rate\(lanekeeper_tokens_total/,
    );
    expect(exprOf('Rate-limited requests')[0]).toMatch(
      /^sum by \(tenant, limit\) \(rate\(lanekeeper_rate_limited_total/,
    );
    expect(
      exprOf('Request latency percentiles').map((e) => /histogram_quantile\(([\d.]+)/.exec(e)?.[1]),
    ).toEqual(['0.5', '0.95', '0.99']);
    for (const e of exprOf('Request latency percentiles'))
      expect(e).toContain('lanekeeper_request_duration_seconds_bucket');
  });

  it('queries only metrics the proxy declares, grouped only by labels they carry', () => {
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        for (const [, name] of expr.matchAll(/(lanekeeper_[a-z_]+?)(?:_bucket)?[{[]/g)) {
          const metric = declared.get(name ?? '');
          expect(metric, `${panel.title}: ${name}`).toBeDefined();
          for (const [, labels] of expr.matchAll(/by \(([^)]*)\)/g)) {
            for (const label of (labels ?? '').split(',').map((l) => l.trim())) {
              if (label !== 'le')
                expect(metric?.labelNames ?? [], `${panel.title}: ${label}`).toContain(label);
            }
          }
        }
      }
    }
  });
});

describe('shipped YAML', () => {
  it.each([
    'charts/lanekeeper/Chart.yaml',
    'charts/lanekeeper/values.yaml',
    'charts/lanekeeper/examples/prometheus-adapter-values.yaml',
    'charts/lanekeeper/ci/gateway-values.yaml',
    'charts/lanekeeper/ci/sidecar-values.yaml',
    'charts/lanekeeper/ci/standalone-values.yaml',
    'deploy/prometheus.yml',
    'deploy/proxy.compose.yaml',
    'docker-compose.yml',
  ])('%s parses as YAML', (path) => {
    expect(readYaml(path)).toBeTypeOf('object');
  });

  it('Chart.yaml is a Helm v2 application chart', () => {
    expect(readYaml('charts/lanekeeper/Chart.yaml')).toMatchObject({
      apiVersion: 'v2',
      name: 'lanekeeper',
      type: 'application',
    });
  });

  it('compose Prometheus scrapes the proxy admin port and the control plane by their compose names', () => {
    const prom = readYaml('deploy/prometheus.yml') as {
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    const targets = prom.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets));
    expect(targets.sort()).toEqual(['control-plane:8081', 'proxy:9464']);
    const services = Object.keys((readYaml('docker-compose.yml') as { services: Tree }).services);
    for (const target of targets) expect(services).toContain(target.split(':')[0]);
  });

  it('the compose proxy config is a valid proxy config in control-plane mode with the admin port open', () => {
    const text = readFileSync(join(REPO_ROOT, 'deploy/proxy.compose.yaml'), 'utf8');
    const config = parseConfig(
      parseYamlConfig(text, {
        LANEKEEPER_PROXY_TOKEN: 'token-from-the-environment',
        LANEKEEPER_PROXY_ADMIN_TOKEN: 'admin-token-from-the-environment',
        LANEKEEPER_METRICS_TOKEN: 'metrics-token-from-the-environment',
      }),
    );
    expect(config.control_plane?.token).toBe('token-from-the-environment');
    expect(config.admin_listen).toBe('0.0.0.0:9464');
    expect(config.metrics_token).toBe('metrics-token-from-the-environment');
    expect(config.admin_token).toBe('admin-token-from-the-environment');
    expect(config.control_plane?.url).toBe('http://control-plane:8081');
    expect(config.store).toMatchObject({ redis: 'redis://redis:6379' });
    expect(config.upstream.url).toBe('http://upstream:8000');
  });

  it('the standalone ci values carry a proxy config the proxy accepts (plans, tenants, pricing inline)', () => {
    const merged = coalesce(defaultValues(), readYaml('charts/lanekeeper/ci/standalone-values.yaml') as Tree);
    const proxyConfig = (merged.proxy as { config: Tree }).config;
    const config = parseConfig({ ...proxyConfig, upstream: { url: 'http://ai-backend:8000' } });
    expect(config.tenants.map((t) => t.id)).toEqual(['acme']);
  });
});
