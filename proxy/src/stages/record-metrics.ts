/**
 * Records what happened once the response is over: Prometheus counters and histograms, and
 * one structured access-log line. First in the pipeline, so on the way back it runs last and
 * sees the final usage, cost and status. Never logs a key, a credential or a body.
 */
import { writeAccessLog } from '../access-log.js';
import { toNanoUsd, type Cell } from '../cell-metrics.js';
import type { Logger } from '../log.js';
import { TOKEN_KINDS, type Metrics, type ModelSeries } from '../metrics.js';
import type { Stage } from '../stage.js';
import type { Usage } from '../usage/usage.js';

/** The Usage field of each of TOKEN_KINDS, in order. */
const USAGE_FIELDS: readonly (keyof Usage)[] = ['input', 'output', 'cachedInput', 'cacheWrite', 'reasoning'];

export function createRecordMetricsStage(deps: { metrics: Metrics; logger: Logger }): Stage {
  const { metrics, logger } = deps;
  const warnedUnpriced = new Set<string>();

  function statusCell(series: ModelSeries, tenant: string, model: string, status: number): Cell {
    if (status === series.lastStatus && series.lastStatusCell !== undefined) return series.lastStatusCell;
    let cell = series.statuses.get(status);
    if (!cell) {
      cell = metrics.requests.cell({ tenant, model, status: String(status) });
      series.statuses.set(status, cell);
    }
    series.lastStatus = status;
    series.lastStatusCell = cell;
    return cell;
  }

  function unreportedCells(series: ModelSeries, tenant: string, model: string, provenance: string) {
    let cells = series.unreported.get(provenance);
    if (!cells) {
      cells = TOKEN_KINDS.map((kind) => metrics.unreportedTokens.cell({ tenant, model, kind, provenance }));
      series.unreported.set(provenance, cells);
    }
    return cells;
  }

  return {
    name: 'record-metrics',
    onResponseEnd(ctx) {
      const tenantSeries = metrics.seriesOfTenant(ctx.tenant?.id);
      const tenant = tenantSeries.label;
      const model = ctx.model ?? 'none';
      const series = metrics.modelSeries(tenantSeries, tenant, model);
      statusCell(series, tenant, model, ctx.status ?? 0).value++;
      metrics.duration.observe(tenantSeries.duration, (ctx.durationMs ?? 0) / 1000, ctx.trace?.traceId);
      if (ctx.ttfbMs !== undefined) metrics.ttfb.observe(metrics.ttfbCell, ctx.ttfbMs / 1000);

      const provenance = ctx.provenance;
      if (provenance) {
        let records = tenantSeries.provenance.get(provenance);
        if (!records) {
          records = metrics.usageProvenance.cell({ tenant, provenance });
          tenantSeries.provenance.set(provenance, records);
        }
        records.value++;
        const unreported =
          provenance === 'estimated' || provenance === 'partial'
            ? unreportedCells(series, tenant, model, provenance)
            : undefined;
        for (let i = 0; i < USAGE_FIELDS.length; i++) {
          const value = ctx.usage[USAGE_FIELDS[i] as keyof Usage];
          if (!value) continue;
          metrics.tokenCell(series, i).value += value;
          if (unreported) (unreported[i] as Cell).value += value;
        }
        if (ctx.costUsd !== undefined) {
          metrics.costCell(series).value += toNanoUsd(ctx.costUsd);
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
        // Forwarded only through an allow_paths entry (check-endpoint), whose pattern it is.
        metrics.unmetered.inc({ tenant, route: ctx.allowedBy ?? 'other' });
      }

      writeAccessLog(logger, ctx);
    },
  };
}
