/**
 * Decides whether a memory series grew: a least-squares line through the second half of the
 * samples (the first half holds start-up, JIT and pool warm-up). Growth counts only when
 * what the line adds over that half exceeds both 5% of the level and twice the scatter of
 * the samples around the line; a sawtooth from garbage collection is scatter, not growth.
 */

/** One memory reading: seconds since the soak began, and a byte count. */
export interface Sample {
  t: number;
  rss: number;
  heap: number;
  /** Redis mode: bytes of the tenant's limit and meter keys, and of its replay guards. */
  redisState?: number;
  redisReplayGuards?: number;
}

export interface Point {
  t: number;
  value: number;
}

export interface Verdict {
  /** Growth beyond noise (false too when there are under 3 samples in the second half). */
  grew: boolean;
  /** Slope of the fitted line over the second half, bytes per second. */
  slopeBytesPerS: number;
  /** What the line adds across the second half, in bytes. */
  growthBytes: number;
  /** Mean level over the second half, bytes. */
  meanBytes: number;
  /** Standard deviation of the residuals around the line, bytes. */
  residualBytes: number;
  summary: string;
}

/** Least-squares slope and intercept of `points`. */
export function linearFit(points: readonly Point[]): { slope: number; intercept: number } {
  const n = points.length;
  if (n < 2) return { slope: 0, intercept: points[0]?.value ?? 0 };
  let st = 0;
  let sv = 0;
  for (const p of points) {
    st += p.t;
    sv += p.value;
  }
  const mt = st / n;
  const mv = sv / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.value - mv);
    den += (p.t - mt) ** 2;
  }
  const slope = den === 0 ? 0 : num / den;
  return { slope, intercept: mv - slope * mt };
}

const MiB = 2 ** 20;

/** The growth verdict for a series (see the file header for the rule). */
export function growthVerdict(points: readonly Point[]): Verdict {
  const half = points.slice(Math.floor(points.length / 2)).filter((p) => Number.isFinite(p.value));
  const { slope, intercept } = linearFit(half);
  const first = half[0]?.t ?? 0;
  const last = half[half.length - 1]?.t ?? 0;
  const growth = slope * (last - first);
  const mean = half.reduce((sum, p) => sum + p.value, 0) / Math.max(1, half.length);
  const residual = Math.sqrt(
    half.reduce((sum, p) => sum + (p.value - (intercept + slope * p.t)) ** 2, 0) / Math.max(1, half.length),
  );
  const enough = half.length >= 3;
  const grew = enough && growth > 0.05 * mean && growth > 2 * residual;
  const summary =
    `${!enough ? 'too few samples to judge' : grew ? 'GREW' : 'flat'}: mean ${(mean / MiB).toFixed(1)} MiB over the second half, ` +
    `slope ${((slope * 3600) / MiB).toFixed(1)} MiB/h (${(growth / MiB).toFixed(2)} MiB across it), ` +
    `scatter ${(residual / MiB).toFixed(2)} MiB`;
  return {
    grew,
    slopeBytesPerS: slope,
    growthBytes: growth,
    meanBytes: mean,
    residualBytes: residual,
    summary,
  };
}
