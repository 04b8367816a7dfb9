/**
 * Outlier ejection per upstream, as Envoy does it: after `eject_after` consecutive
 * failures an upstream is skipped for `eject_for_ms`, doubling (up to 10 minutes) each time
 * it is ejected again without a success between; the fallbacks serve meanwhile. When the
 * time is up, one request at a time goes to it as a probe: a success lets it back in, a
 * failure ejects it again. State is per process and survives config reloads (by name).
 *
 * The same failures and successes feed one outage log per upstream (issue 18): an upstream
 * ejected is one warning, a summary a minute while its calls keep failing, and one line when
 * a call succeeds again, not a warning for each request it failed. The log follows ejection,
 * not single failures: begun at the first failure and ended by any success, an upstream
 * failing one call in three wrote a warning and an info line for each failure.
 */
import { createOutageLog, type OutageLog, type OutageLogger } from '@lanekeeper/contract';
import type { Metrics } from '../metrics.js';
import type { Upstream } from '../runtime.js';

const MAX_EJECTION_MS = 10 * 60_000;

interface State {
  failures: number;
  /** Ejected until this time (ms); 0 when not ejected. */
  until: number;
  /** How long the next ejection lasts. */
  next: number;
  /** A probe is in flight: others keep skipping the upstream until it answers. */
  probing: boolean;
  /** Undefined without a logger. */
  outage: OutageLog | undefined;
}

export interface UpstreamHealthOptions {
  now?: () => number;
  /** Where an upstream's outages are told; none in unit tests of the ejection alone. */
  logger?: OutageLogger;
}

/** A state no one keeps, for a call on an upstream that is no longer configured. */
function detached(upstream: Upstream): State {
  return { failures: 0, until: 0, next: upstream.config.eject_for_ms, probing: false, outage: undefined };
}

export class UpstreamHealth {
  private readonly states = new Map<string, State>();
  /** The upstreams of the config in force, once a reload has said (keepOnly). */
  private kept: ReadonlySet<string> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly metrics: Metrics,
    private readonly options: UpstreamHealthOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  private stateOf(upstream: Upstream): State {
    let state = this.states.get(upstream.name);
    // A call still running on an upstream a reload removed: its outcome says nothing anyone
    // reads, and kept, it brought back the upstream's series (and its alert) the reload ended.
    if (!state && this.kept && !this.kept.has(upstream.name)) return detached(upstream);
    if (!state) {
      const { logger } = this.options;
      state = {
        failures: 0,
        until: 0,
        next: upstream.config.eject_for_ms,
        probing: false,
        outage:
          logger &&
          createOutageLog(logger, `upstream ${upstream.name}`, {
            now: this.now,
            fields: { upstream: upstream.name },
          }),
      };
      this.states.set(upstream.name, state);
      this.metrics.upstreamUp.set({ upstream: upstream.name }, 1);
    }
    return state;
  }

  /**
   * Whether a request may go to the upstream now: it is not ejected, or its ejection is
   * over and no probe is out (then the request that goes becomes the probe, see `begin`).
   */
  available(upstream: Upstream): boolean {
    const state = this.stateOf(upstream);
    return state.until === 0 || (!state.probing && this.now() >= state.until);
  }

  /**
   * A call to the upstream starts; on an upstream whose ejection is over it is the one
   * probe. A call while it is still ejected is panic mode (every candidate ejected): its
   * failure says nothing new, and taken for a failed probe it restarted the ejection at
   * twice the length, so the probe due at its end never went.
   */
  begin(upstream: Upstream): void {
    const state = this.stateOf(upstream);
    if (state.until !== 0 && this.now() >= state.until) state.probing = true;
  }

  succeeded(upstream: Upstream): void {
    const state = this.stateOf(upstream);
    if (state.until !== 0) this.metrics.upstreamUp.set({ upstream: upstream.name }, 1);
    state.failures = 0;
    state.until = 0;
    state.probing = false;
    state.next = upstream.config.eject_for_ms;
    state.outage?.succeeded();
  }

  /** A call failed in a way that says the upstream is unwell; `reason` goes in the outage log. */
  failed(upstream: Upstream, reason: string): void {
    const state = this.stateOf(upstream);
    state.failures++;
    const probeFailed = state.probing;
    if (probeFailed || (state.until === 0 && state.failures >= upstream.config.eject_after)) {
      state.probing = false;
      state.until = this.now() + state.next;
      state.next = Math.min(state.next * 2, MAX_EJECTION_MS);
      if (this.states.get(upstream.name) === state)
        this.metrics.upstreamUp.set({ upstream: upstream.name }, 0);
    }
    if (state.until !== 0) state.outage?.failed(reason);
  }

  /**
   * Forgets upstreams a reload removed (or renamed): one ejected then kept exporting
   * lanekeeper_upstream_up 0, and its alert fired until every replica restarted.
   */
  keepOnly(names: readonly string[]): void {
    const kept = new Set(names);
    this.kept = kept;
    for (const name of this.states.keys()) {
      if (kept.has(name)) continue;
      this.states.delete(name);
      this.metrics.upstreamUp.remove({ upstream: name });
    }
  }

  /** Ends a probe that neither succeeded nor failed (the client left): another may go. */
  released(upstream: Upstream): void {
    this.stateOf(upstream).probing = false;
  }
}
