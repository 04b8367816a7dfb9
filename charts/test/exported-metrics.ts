/**
 * The metric names the proxy serves on /metrics, taken from its own registry (proxy/src/metrics.ts
 * plus the standard process metrics), so chart alerts and dashboard panels can be checked
 * against what really exists. Histograms count with their _bucket, _sum and _count series.
 */
import { Metrics } from '../../proxy/src/metrics.js';

/** Every series name a query may reference. */
export async function exportedMetricNames(): Promise<Set<string>> {
  const metrics = new Metrics(10);
  const names = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram' || String(metric.type) === 'summary') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    }
  }
  return names;
}

/** The metric names a PromQL expression reads (lanekeeper_*, process_*, nodejs_*). */
export function referencedMetrics(expr: string): string[] {
  return [...new Set(expr.match(/\b(?:lanekeeper|process|nodejs)_[a-zA-Z0-9_]*/g) ?? [])];
}
