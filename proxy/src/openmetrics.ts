/**
 * The OpenMetrics text view of a registry, served when the scraper asks for
 * `application/openmetrics-text` (Prometheus does when exemplar storage is on): the same
 * metrics, plus the request-duration buckets' trace-id exemplars.
 *
 * prom-client renames counters in place when it writes OpenMetrics (it strips `_total` from
 * the metric's own `name`), which would break the Prometheus text that follows. So each
 * scrape wraps the metrics in a throwaway registry, and only the wrappers are renamed.
 */
import client, { type Registry } from 'prom-client';

export const OPENMETRICS_CONTENT_TYPE = client.Registry.OPENMETRICS_CONTENT_TYPE;

/** True when an Accept header prefers (or only names) OpenMetrics. */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('application/openmetrics-text');
}

interface Readable {
  name: string;
  help: string;
  type: string;
  get(): Promise<{ name: string; type: string } & Record<string, unknown>>;
}

export async function openMetricsText(registry: Registry): Promise<string> {
  const view: Registry = new client.Registry();
  view.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE as never);
  for (const metric of registry.getMetricsAsArray() as unknown as Readable[]) {
    view.registerMetric({
      name: metric.name,
      help: metric.help,
      type: metric.type,
      async get() {
        const read = await metric.get();
        return read.type === 'counter' ? { ...read, name: read.name.replace(/_total$/, '') } : read;
      },
    } as never);
  }
  return view.metrics();
}
