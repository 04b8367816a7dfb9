/**
 * The proxy's autoscaling design, pinned: defaults in values.yaml, the HPA template that
 * reads them, and the prometheus-adapter rule that produces the Pods metric it targets.
 * The metric names come from the proxy's own Metrics class, so a rename breaks this test.
 */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../proxy/src/metrics.js';
import { defaultValues, readYaml, templateSources, valueAt } from './chart.js';
import { valuesPaths } from './go-template.js';

const values = defaultValues();
const hpa = templateSources().get('proxy-hpa.yaml') ?? '';

describe('proxy HorizontalPodAutoscaler', () => {
  it('defaults to 3..100 replicas, 50 requests/s per pod (AverageValue) and 70% CPU', () => {
    expect(valueAt(values, 'proxy.autoscaling.enabled')).toBe(true);
    expect(valueAt(values, 'proxy.autoscaling.minReplicas')).toBe(3);
    expect(valueAt(values, 'proxy.autoscaling.maxReplicas')).toBe(100);
    expect(valueAt(values, 'proxy.autoscaling.requestsPerSecond')).toEqual({
      enabled: true,
      metricName: 'requests_per_second',
      averageValue: '50',
    });
    expect(valueAt(values, 'proxy.autoscaling.cpu')).toEqual({ enabled: true, averageUtilization: 70 });
  });

  it('scales up fast: 60 s window, at most 10 pods per 60 s', () => {
    expect(valueAt(values, 'proxy.autoscaling.behavior.scaleUp')).toEqual({
      stabilizationWindowSeconds: 60,
      selectPolicy: 'Max',
      policies: [{ type: 'Pods', value: 10, periodSeconds: 60 }],
    });
  });

  it('scales down slowly: 300 s window, at most 2 pods per 120 s', () => {
    expect(valueAt(values, 'proxy.autoscaling.behavior.scaleDown')).toEqual({
      stabilizationWindowSeconds: 300,
      selectPolicy: 'Max',
      policies: [{ type: 'Pods', value: 2, periodSeconds: 120 }],
    });
  });

  it('is an autoscaling/v2 HPA on the proxy Deployment with a Pods metric and a CPU Resource metric', () => {
    expect(hpa).toMatch(/^apiVersion: autoscaling\/v2$/m);
    expect(hpa).toMatch(/^kind: HorizontalPodAutoscaler$/m);
    expect(hpa).toMatch(/kind: Deployment\n\s+name: \{\{ include "lanekeeper\.proxy\.fullname" \. \}\}/);
    expect(hpa).toMatch(
      /- type: Pods\n\s+pods:\n\s+metric:\n\s+name: \{\{ \$as\.requestsPerSecond\.metricName \}\}\n\s+target:\n\s+type: AverageValue/,
    );
    expect(hpa).toMatch(/- type: Resource\n\s+resource:\n\s+name: cpu\n\s+target:\n\s+type: Utilization/);
  });

  it('takes every number from values (nothing hard-coded in the template)', () => {
    expect(valuesPaths(hpa)).toEqual(
      expect.arrayContaining([
        'proxy.autoscaling.minReplicas',
        'proxy.autoscaling.maxReplicas',
        'proxy.autoscaling.requestsPerSecond.averageValue',
        'proxy.autoscaling.cpu.averageUtilization',
        'proxy.autoscaling.behavior',
      ]),
    );
    expect(hpa.replace(/\{\{[^}]*\}\}/g, '')).not.toMatch(/:\s*\d+\s*$/m);
  });

  it('leaves the replica count to the HPA when autoscaling is on', () => {
    expect(templateSources().get('proxy-deployment.yaml')).toMatch(
      /\{\{- if not \.Values\.proxy\.autoscaling\.enabled \}\}\n\s+replicas: \{\{ \.Values\.proxy\.replicaCount \}\}/,
    );
  });
});

describe('prometheus-adapter rule', () => {
  const adapter = readYaml('charts/lanekeeper/examples/prometheus-adapter-values.yaml') as {
    rules: {
      default: boolean;
      custom: {
        seriesQuery: string;
        resources: unknown;
        name: { matches: string; as: string };
        metricsQuery: string;
      }[];
    };
  };
  const rule = adapter.rules.custom[0];
  const requestsMetric = new Metrics(10).requests as unknown as { name: string };

  it('reads the proxy counter that counts every request', () => {
    expect(requestsMetric.name).toBe('lanekeeper_requests_total');
    expect(rule?.seriesQuery).toContain(`${requestsMetric.name}{`);
    expect(new RegExp(rule?.name.matches ?? '^$').test(requestsMetric.name)).toBe(true);
  });

  it('serves it per pod under the name the HPA asks for', () => {
    expect(rule?.name.as).toBe(valueAt(values, 'proxy.autoscaling.requestsPerSecond.metricName'));
    expect(rule?.resources).toEqual({
      overrides: { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } },
    });
  });

  it('turns the counter into a per-second rate summed per pod', () => {
    expect(rule?.metricsQuery).toMatch(
      /^sum by \(<<\.GroupBy>>\) \(rate\(<<\.Series>>\{<<\.LabelMatchers>>\}\[\d+m\]\)\)$/,
    );
  });
});
