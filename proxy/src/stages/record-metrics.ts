/**
 * Records what happened once the response is over: Prometheus counters and histograms, and
 * one structured access-log line. First in the pipeline, so on the way back it runs last and
 * sees the final usage, cost and status. Never logs a key, a credential or a body.
 */
import { writeAccessLog } from '../access-log.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Stage } from '../stage.js';

const TOKEN_KINDS = [
  ['input', 'input'],
  ['output', 'output'],
  ['cachedInput', 'cached_input'],
  ['cacheWrite', 'cache_write'],
  ['reasoning', 'reasoning'],
] as const;

export function createRecordMetricsStage(deps: { metrics: Metrics; logger: Logger }): Stage {
  const { metrics, logger } = deps;
  const warnedUnpriced = new Set<string>();
  return {
    name: 'record-metrics',
    onResponseEnd(ctx) {
      const tenant = metrics.tenantLabel(ctx.tenant?.id);
      const model = ctx.model ?? 'none';
      const status = ctx.status ?? 0;
      metrics.requests.inc({ tenant, model, status: String(status) });
      metrics.duration.observe({ tenant }, (ctx.durationMs ?? 0) / 1000);
      if (ctx.ttfbMs !== undefined) metrics.ttfb.observe(ctx.ttfbMs / 1000);

      if (ctx.provenance) {
        metrics.usageProvenance.inc({ tenant, provenance: ctx.provenance });
        for (const [field, kind] of TOKEN_KINDS) {
          const value = ctx.usage[field];
          if (!value) continue;
          metrics.tokens.inc({ tenant, model, kind }, value);
          if (ctx.provenance === 'estimated' || ctx.provenance === 'partial') {
            metrics.unreportedTokens.inc({ tenant, model, kind, provenance: ctx.provenance }, value);
          }
        }
        if (ctx.costUsd !== undefined) {
          metrics.cost.inc({ tenant, model }, ctx.costUsd);
        } else {
          const tokens = (ctx.usage.input ?? 0) + (ctx.usage.output ?? 0);
          if (tokens > 0) metrics.unpricedTokens.inc({ model }, tokens);
          if (tokens > 0 && !warnedUnpriced.has(model)) {
            warnedUnpriced.add(model);
            logger.warn(
              { model },
              'model has no pricing entry: its tokens are counted as unpriced, not as $0',
            );
          }
        }
      } else if (ctx.tenant && !ctx.route?.metered && ctx.outcome !== 'local_reply') {
        metrics.unmetered.inc({ tenant, route: unmeteredRoute(ctx.request.path) });
      }

      writeAccessLog(logger, ctx);
    },
  };
}

/** A bounded route label: the first two path segments, so ids in paths cannot explode cardinality. */
export function unmeteredRoute(path: string): string {
  const segments = path.split('/').filter(Boolean).slice(0, 2);
  return `/${segments.map((s) => (/^[A-Za-z0-9_.-]{1,40}$/.test(s) ? s : ':param')).join('/')}`;
}
