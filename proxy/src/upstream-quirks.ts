/**
 * What the proxy has learned about its upstreams' limitations while running. Some
 * OpenAI-compatible servers (older vLLM builds, for example) refuse `stream_options` with a
 * 400; once seen, the proxy stops asking that upstream for stream usage, so the retry is
 * paid once, and estimates the usage of its streams instead.
 *
 * What is learned here changes how every tenant on the upstream is metered, so it is only
 * learned from proof (exchange.ts: the request without the field succeeded where the same
 * request with it was refused) and only for a while: an upgraded upstream is asked again.
 */
export class UpstreamQuirks {
  /** Upstream URL → when the quirk was learned (ms, the clock below). */
  private readonly noStreamOptions = new Map<string, number>();

  constructor(
    /** How long a learned quirk holds before the upstream is asked again. */
    private readonly ttlMs = QUIRK_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  rejectsStreamOptions(upstreamUrl: string): boolean {
    const learned = this.noStreamOptions.get(upstreamUrl);
    if (learned === undefined) return false;
    if (this.now() - learned < this.ttlMs) return true;
    this.noStreamOptions.delete(upstreamUrl);
    return false;
  }

  markRejectsStreamOptions(upstreamUrl: string): void {
    this.noStreamOptions.set(upstreamUrl, this.now());
  }
}

/** An hour: a retry a request for each upstream and hour is cheap, a quirk kept forever is not. */
export const QUIRK_TTL_MS = 3_600_000;

/** True when an upstream's 400 body blames the stream_options field the proxy added. */
export function blamesStreamOptions(body: string): boolean {
  return /stream_options|include_usage/i.test(body);
}
