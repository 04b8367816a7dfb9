/**
 * Counters and histograms for the per-request path, kept in plain number cells that the
 * caller finds once per series and bumps directly; prom-client reads them only when
 * Prometheus scrapes. prom-client's own `inc`/`observe` build and hash a label string on
 * every call (about 1 µs each, six or seven per request); a cell costs one addition.
 *
 * They register in a prom-client Registry like any metric (the registry only needs `get`),
 * so /metrics output, HELP and TYPE lines are prom-client's.
 */
import type { Registry } from 'prom-client';

/** What a registry reads from a metric at scrape time (prom-client's `get()` shape). */
export interface Exposition {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  readonly values: {
    metricName?: string;
    labels: Record<string, string>;
    value: number;
    /** OpenMetrics only: the trace of a recent observation in this bucket. */
    exemplar?: { labelSet: Record<string, string>; value: number; timestamp: number };
  }[];
}

/** One series' value, bumped in place. */
export interface Cell {
  value: number;
}

/** One series of a histogram: counts per bucket (not cumulative), sum and count. */
export interface HistogramCell {
  readonly counts: Float64Array;
  sum: number;
  count: number;
  /** Per bucket, the latest traced observation; created on the first one (tracing on). */
  exemplars?: ({ traceId: string; value: number; timestamp: number } | undefined)[];
}

interface Options<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
}

/** The key of a series: its label values, each after its length, so no two sets collide. */
function keyOf(values: readonly string[]): string {
  return values.length === 1 ? (values[0] as string) : values.map((v) => `${v.length}:${v}`).join('');
}

abstract class CellMetric<L extends string, C> {
  abstract readonly type: Exposition['type'];
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  protected readonly labelNames: readonly L[];
  protected readonly series = new Map<string, { labels: Record<L, string>; cell: C }>();

  constructor(options: Options<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  protected abstract create(): C;

  /** The exported values of one series (its samples, for a histogram). */
  protected abstract samples(labels: Record<string, string>, cell: C): Exposition['values'];

  get(): Promise<Exposition> {
    const values: Exposition['values'] = [];
    for (const { labels, cell } of this.series.values()) values.push(...this.samples(labels, cell));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: 'sum', values });
  }

  /** The series of these labels (created at zero on first use); keep it, and bump it. */
  cell(labels: Record<L, string>): C {
    const values = this.labelNames.map((n) => labels[n]);
    const key = keyOf(values);
    let entry = this.series.get(key);
    if (!entry) {
      entry = { labels: { ...labels }, cell: this.create() };
      this.series.set(key, entry);
    }
    return entry.cell;
  }

  /** Drops every series whose label `name` is one of `values` (tenants gone from the config). */
  forget(name: L, values: ReadonlySet<string>): void {
    for (const [key, entry] of this.series) if (values.has(entry.labels[name])) this.series.delete(key);
  }

  reset(): void {
    this.series.clear();
  }
}

/** A monotonic counter of cells. */
export class CellCounter<L extends string> extends CellMetric<L, Cell> {
  readonly type = 'counter' as const;

  protected override create(): Cell {
    return { value: 0 };
  }

  /** For paths off the hot one: finds the cell and adds to it. */
  inc(labels: Record<L, string>, value = 1): void {
    this.cell(labels).value += value;
  }

  protected exported(cell: Cell): number {
    return cell.value;
  }

  protected override samples(labels: Record<string, string>, cell: Cell): Exposition['values'] {
    return [{ labels, value: this.exported(cell) }];
  }
}

/** Nano-dollars in a USD amount, rounded: sums of them are exact integers. */
export function toNanoUsd(usd: number): number {
  return Math.round(usd * 1e9);
}

/**
 * A USD counter summed in integer nano-dollars, so the exported value is one correctly
 * rounded division (0.000333, never 0.00033299999999999996 from adding floats).
 * Cells hold nano-dollars: bump them with `toNanoUsd(usd)`.
 */
export class UsdCounter<L extends string> extends CellCounter<L> {
  protected override exported(cell: Cell): number {
    return cell.value / 1e9;
  }
}

/** A histogram of cells with fixed upper bounds. */
export class CellHistogram<L extends string> extends CellMetric<L, HistogramCell> {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];

  constructor(options: Options<L> & { readonly buckets: readonly number[] }) {
    super(options);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
  }

  protected override create(): HistogramCell {
    return { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
  }

  /** Records one value in a series; a trace id becomes the bucket's exemplar. */
  observe(cell: HistogramCell, value: number, traceId?: string): void {
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && value > (buckets[i] as number)) i++;
    cell.counts[i] = (cell.counts[i] as number) + 1;
    cell.sum += value;
    cell.count += 1;
    if (traceId !== undefined) (cell.exemplars ??= [])[i] = { traceId, value, timestamp: Date.now() / 1000 };
  }

  protected override samples(labels: Record<string, string>, cell: HistogramCell): Exposition['values'] {
    const values: Exposition['values'] = [];
    let cumulative = 0;
    for (let i = 0; i <= this.buckets.length; i++) {
      cumulative += cell.counts[i] ?? 0;
      const le = i < this.buckets.length ? String(this.buckets[i]) : '+Inf';
      const seen = cell.exemplars?.[i];
      values.push({
        metricName: `${this.name}_bucket`,
        labels: { le, ...labels },
        value: cumulative,
        ...(seen
          ? {
              exemplar: {
                labelSet: { trace_id: seen.traceId },
                value: seen.value,
                timestamp: seen.timestamp,
              },
            }
          : {}),
      });
    }
    values.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
    values.push({ metricName: `${this.name}_count`, labels, value: cell.count });
    return values;
  }
}
