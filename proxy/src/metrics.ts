/**
 * Every Prometheus metric the proxy exports, declared once. Each proxy instance has its own
 * registry, so several proxies in one test process never share counters. The tenant label
 * is bounded: past `max_tenants` distinct tenants, new ones are counted as "_other".
 */
import client from 'prom-client';
import { CellCounter, CellHistogram, UsdCounter, type Cell, type HistogramCell } from './cell-metrics.js';

export const OTHER_TENANT = '_other';
/**
 * The tenant label of requests refused before a tenant was identified. Not a tenant id (ids
 * have no "_"): it was "none", which is one, so a tenant of that name shared its series with
 * every refused stranger, and forgetting the tenant forgot their counts too.
 */
export const NO_TENANT = '_none';

/** The token kinds of lanekeeper_tokens_total, in the order of `ModelSeries.tokens`. */
export const TOKEN_KINDS = ['input', 'output', 'cached_input', 'cache_write', 'reasoning'] as const;

/** One tenant's and model's series, found once and bumped per request (cell-metrics.ts). */
export interface ModelSeries {
  readonly tenant: string;
  readonly model: string;
  readonly statuses: Map<number, Cell>;
  /** The status counted last and its cell: most requests repeat it, and skip the map. */
  lastStatus: number;
  lastStatusCell: Cell | undefined;
  /** By TOKEN_KINDS index; made on first use, so a kind never metered has no series. */
  readonly tokens: (Cell | undefined)[];
  /** Nano-dollars; made on first use, so a model never priced has no cost series. */
  cost: Cell | undefined;
  /** lanekeeper_unreported_tokens_total by provenance, then TOKEN_KINDS index; made on first use. */
  readonly unreported: Map<string, readonly Cell[]>;
}

/** One tenant label's series. */
export interface TenantSeries {
  readonly label: string;
  readonly duration: HistogramCell;
  readonly provenance: Map<string, Cell>;
  readonly models: Map<string, ModelSeries>;
  /** The model used last: a tenant's requests mostly name the same one, and skip the map. */
  lastModel: ModelSeries | undefined;
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly seenTenants = new Set<string>();

  readonly requests = new CellCounter({
    name: 'lanekeeper_requests_total',
    help: 'Requests answered, by tenant, model sent upstream and HTTP status.',
    labelNames: ['tenant', 'model', 'status'] as const,
    registers: [this.registry],
  });
  readonly tokens = new CellCounter({
    name: 'lanekeeper_tokens_total',
    help: 'Metered tokens by tenant, model and kind (input, output, cached_input, cache_write, reasoning).',
    labelNames: ['tenant', 'model', 'kind'] as const,
    registers: [this.registry],
  });
  readonly unreportedTokens = new CellCounter({
    name: 'lanekeeper_unreported_tokens_total',
    help: 'The part of lanekeeper_tokens_total the upstream did not report: provenance "estimated" or "partial".',
    labelNames: ['tenant', 'model', 'kind', 'provenance'] as const,
    registers: [this.registry],
  });
  readonly cost = new UsdCounter({
    name: 'lanekeeper_cost_usd_total',
    help: 'Cost of metered usage in USD, from the pricing table (summed exactly, in nano-dollars).',
    labelNames: ['tenant', 'model'] as const,
    registers: [this.registry],
  });
  readonly budget = new client.Gauge({
    name: 'lanekeeper_budget_usd',
    help: "A tenant's spend budget in USD per window (day: UTC day, month: calendar month), from its plan; compare with lanekeeper_cost_usd_total.",
    labelNames: ['tenant', 'window'] as const,
    registers: [this.registry],
  });
  /** The budgets last set per tenant label, so a request only touches the gauge when one changed. */
  private readonly budgets = new Map<string, readonly [number | undefined, number | undefined]>();

  /**
   * Publishes a tenant's day and month budgets (undefined: none, and the series goes away).
   * "_other" stands for many tenants with different budgets, so it never gets one. Runs on
   * every limited request: a tenant that never had a budget returns at the first test.
   */
  setBudgets(tenant: string, day: number | undefined, month: number | undefined): void {
    if (day === undefined && month === undefined && !this.budgets.has(tenant)) return;
    // Not tenantLabel(): this is no observation, so it must not count an overflow.
    const tenantLabel = this.labelOf(tenant);
    if (tenantLabel === OTHER_TENANT) return;
    const last = this.budgets.get(tenantLabel);
    if (last && last[0] === day && last[1] === month) return;
    this.budgets.set(tenantLabel, [day, month]);
    for (const [window, usd] of [
      ['day', day],
      ['month', month],
    ] as const) {
      if (usd === undefined) this.budget.remove({ tenant: tenantLabel, window });
      else this.budget.set({ tenant: tenantLabel, window }, usd);
    }
  }
  /**
   * Publishes anew the budgets already exported, from the config now in force. Set only as
   * requests came, a budget a reload changed or removed stayed exported at its old value
   * until the tenant's next request, and the budget alert compared spend with it.
   */
  refreshBudgets(budgetsOf: (tenant: string) => readonly [number | undefined, number | undefined]): void {
    for (const tenant of [...this.budgets.keys()]) {
      const [day, month] = budgetsOf(tenant);
      this.setBudgets(tenant, day, month);
    }
  }

  readonly unpricedTokens = new client.Counter({
    name: 'lanekeeper_unpriced_tokens_total',
    help: 'Tokens of models that have no pricing entry (never booked as $0).',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly connectionsDropped = new client.Counter({
    name: 'lanekeeper_connections_dropped_total',
    help: 'Client connections closed on accept because the listener held server.max_connections.',
    registers: [this.registry],
  });
  readonly usageInvalid = new client.Counter({
    name: 'lanekeeper_usage_invalid_total',
    help: 'Usage figures an upstream reported that no answer can have (negative, fractional, above 1e12), clamped and booked with provenance "invalid".',
    labelNames: ['tenant', 'field'] as const,
    registers: [this.registry],
  });
  readonly upstreamRequests = new client.Counter({
    name: 'lanekeeper_upstream_requests_total',
    help: 'Calls to each upstream (every attempt, retries and fallbacks included), by status; 0 when none came (connect error, timeout).',
    labelNames: ['upstream', 'status'] as const,
    registers: [this.registry],
  });
  private readonly upstreamCalls = new Map<string, Map<number, client.Counter.Internal>>();

  /** Counts one upstream call; the labelled child is kept, as this runs on every request. */
  upstreamCall(upstream: string, status: number): void {
    let byStatus = this.upstreamCalls.get(upstream);
    if (!byStatus) {
      byStatus = new Map();
      this.upstreamCalls.set(upstream, byStatus);
    }
    let child = byStatus.get(status);
    if (!child) {
      child = this.upstreamRequests.labels({ upstream, status: String(status) });
      // Statuses are three digits, so this stays small; cleared should an upstream invent many.
      if (byStatus.size > 100) byStatus.clear();
      byStatus.set(status, child);
    }
    child.inc();
  }
  readonly fallbacks = new client.Counter({
    name: 'lanekeeper_fallbacks_total',
    help: "Requests moved to the next model of an alias's fallback list, by the models and why.",
    labelNames: ['from', 'to', 'reason'] as const,
    registers: [this.registry],
  });
  readonly upstreamRetries = new client.Counter({
    name: 'lanekeeper_upstream_retries_total',
    help: 'Retries of a call on the same upstream, by why.',
    labelNames: ['upstream', 'reason'] as const,
    registers: [this.registry],
  });
  readonly upstreamUp = new client.Gauge({
    name: 'lanekeeper_upstream_up',
    help: '1 while an upstream takes requests, 0 while it is ejected after consecutive failures.',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new client.Counter({
    name: 'lanekeeper_rate_limited_total',
    help: 'Requests refused by a tenant limit, by limit name.',
    labelNames: ['tenant', 'limit'] as const,
    registers: [this.registry],
  });
  readonly unmetered = new client.Counter({
    name: 'lanekeeper_unmetered_requests_total',
    help: 'Requests forwarded that no dialect could meter, by tenant and route.',
    labelNames: ['tenant', 'route'] as const,
    registers: [this.registry],
  });
  readonly usageProvenance = new CellCounter({
    name: 'lanekeeper_usage_records_total',
    help: 'Usage records by provenance (reported, estimated, partial, invalid).',
    labelNames: ['tenant', 'provenance'] as const,
    registers: [this.registry],
  });
  readonly duration = new CellHistogram({
    name: 'lanekeeper_request_duration_seconds',
    help: 'Time from request arrival to the last byte sent, by tenant.',
    labelNames: ['tenant'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly ttfb = new CellHistogram({
    name: 'lanekeeper_upstream_ttfb_seconds',
    help: 'Time from forwarding a request to the upstream response headers.',
    labelNames: [],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly ttfbCell = this.ttfb.cell({});
  private readonly tenantSeries = new Map<string, TenantSeries>();
  readonly tenantOverflow = new client.Counter({
    name: 'lanekeeper_tenant_label_overflow_total',
    help: 'Observations counted under tenant="_other" because metrics.max_tenants was reached.',
    registers: [this.registry],
  });
  readonly configReloads = new client.Counter({
    name: 'lanekeeper_config_reloads_total',
    help: 'Configuration reloads by result (applied, rejected).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly storeUp = new client.Gauge({
    name: 'lanekeeper_store_up',
    help: '1 when the limit and meter store answers, 0 when it does not.',
    labelNames: ['store'] as const,
    registers: [this.registry],
  });
  readonly storeErrors = new client.Counter({
    name: 'lanekeeper_store_errors_total',
    help: 'Store calls that failed or timed out, by operation.',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });
  readonly storeFailuresInARow = new client.Gauge({
    name: 'lanekeeper_store_consecutive_failures',
    help: 'Store calls failed in a row; the store is marked down at store.redis.failure_detector.consecutive_failures.',
    registers: [this.registry],
  });
  readonly meterBuffered = new client.Gauge({
    name: 'lanekeeper_meter_buffer_events',
    help: 'Usage events waiting in memory for the store to come back.',
    registers: [this.registry],
  });
  readonly meterDropped = new client.Counter({
    name: 'lanekeeper_meter_events_dropped_total',
    help: 'Usage events lost because the in-memory buffer overflowed while the store was away.',
    registers: [this.registry],
  });
  readonly vectorCalls = new client.Counter({
    name: 'lanekeeper_vector_requests_total',
    help: 'Calls through the tenant-scoped Qdrant route, by tenant, operation and status.',
    labelNames: ['tenant', 'operation', 'status'] as const,
    registers: [this.registry],
  });

  constructor(private readonly maxTenants: number) {
    // Unprefixed, as every Node dashboard and alert expects them (process_cpu_seconds_total,
    // nodejs_eventloop_lag_seconds, ...): they describe the process, not Lanekeeper.
    client.collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges *_total, which Prometheus reserves for counters
    // (promtool check metrics flags them); they add little to the process metrics above.
    for (const kind of ['handles', 'requests', 'resources']) {
      this.registry.removeSingleMetric(`nodejs_active_${kind}_total`);
    }
  }

  /** The series of a tenant label (from `tenantLabel`), found or made. */
  seriesOf(tenant: string): TenantSeries {
    let series = this.tenantSeries.get(tenant);
    if (!series) {
      series = {
        label: tenant,
        duration: this.duration.cell({ tenant }),
        provenance: new Map(),
        models: new Map(),
        lastModel: undefined,
      };
      this.tenantSeries.set(tenant, series);
    }
    return series;
  }

  /**
   * The series of a request's tenant (undefined: none identified), under its label. A tenant
   * that has its own series is found with one lookup, not a label lookup and then a series
   * lookup: with a thousand tenants taking turns each is a cache miss. "_none" and "_other"
   * name other requests' series too, so they always take the long way.
   */
  seriesOfTenant(tenant: string | undefined): TenantSeries {
    if (tenant !== undefined && tenant !== OTHER_TENANT && tenant !== NO_TENANT) {
      // Only tenantLabel() makes labels, and it returns a tenant's own id only once that id
      // holds a place under the bound, which it keeps: so a series under the id is its own.
      const own = this.tenantSeries.get(tenant);
      if (own) return own;
    }
    return this.seriesOf(this.tenantLabel(tenant));
  }

  /** The series of a tenant label and a model, found or made. */
  modelSeries(tenant: TenantSeries, tenantLabel: string, model: string): ModelSeries {
    const last = tenant.lastModel;
    if (last !== undefined && last.model === model) return last;
    let series = tenant.models.get(model);
    if (!series) {
      series = {
        tenant: tenantLabel,
        model,
        statuses: new Map(),
        lastStatus: -1,
        lastStatusCell: undefined,
        tokens: TOKEN_KINDS.map(() => undefined),
        cost: undefined,
        unreported: new Map(),
      };
      tenant.models.set(model, series);
    }
    tenant.lastModel = series;
    return series;
  }

  /** The token counter of a series and TOKEN_KINDS index. */
  tokenCell(series: ModelSeries, kind: number): Cell {
    let cell = series.tokens[kind];
    if (!cell) {
      const labels = { tenant: series.tenant, model: series.model, kind: TOKEN_KINDS[kind] as string };
      cell = this.tokens.cell(labels);
      series.tokens[kind] = cell;
    }
    return cell;
  }

  /** The cost counter (nano-dollars) of a series. */
  costCell(series: ModelSeries): Cell {
    series.cost ??= this.cost.cell({ tenant: series.tenant, model: series.model });
    return series.cost;
  }

  /**
   * Frees the places under metrics.max_tenants, and drops the series, of tenants the config
   * no longer has, on every applied config. Kept, a proxy whose tenants came and went filled
   * its places with tenants that no longer existed, exported their series until a restart,
   * and counted every newer tenant as "_other". A tenant's last increments since the last
   * scrape go with it.
   */
  async forgetTenantsNotIn(tenants: ReadonlyMap<string, unknown>): Promise<void> {
    const gone = [...this.seenTenants].filter((tenant) => !tenants.has(tenant));
    if (gone.length === 0) return;
    const cells = [
      this.requests,
      this.tokens,
      this.unreportedTokens,
      this.cost,
      this.usageProvenance,
      this.duration,
    ];
    const counters = [this.budget, this.usageInvalid, this.rateLimited, this.unmetered, this.vectorCalls];
    const labelSets = await Promise.all(counters.map(async (metric) => (await metric.get()).values));
    const goneSet = new Set(gone);
    for (const tenant of gone) {
      this.seenTenants.delete(tenant);
      this.tenantSeries.delete(tenant);
      this.budgets.delete(tenant);
    }
    // One pass over each metric's series for all the tenants gone: one pass per tenant took
    // 12.9 s with the event loop held, for 1,000 of 10,000 tenants removed at once.
    for (const metric of cells) metric.forget('tenant', goneSet);
    counters.forEach((metric, i) => {
      for (const { labels } of labelSets[i]!) {
        if (goneSet.has(String(labels.tenant))) (metric as client.Counter<string>).remove(labels as never);
      }
    });
  }

  /** The tenant label to use: the id itself while under the cardinality bound, else "_other". */
  tenantLabel(tenant: string | undefined): string {
    if (tenant === undefined) return NO_TENANT;
    const label = this.labelOf(tenant);
    if (label === OTHER_TENANT) this.tenantOverflow.inc();
    return label;
  }

  /** The tenant label, taking a free place under the bound; no overflow counted. */
  private labelOf(tenant: string): string {
    if (this.seenTenants.has(tenant)) return tenant;
    if (this.seenTenants.size < this.maxTenants) {
      this.seenTenants.add(tenant);
      return tenant;
    }
    return OTHER_TENANT;
  }
}
