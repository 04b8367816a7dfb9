/**
 * What the proxy has learned about its upstreams' limitations while running. Some
 * OpenAI-compatible servers (older vLLM builds, for example) refuse `stream_options` with a
 * 400; once seen, the proxy stops asking that upstream for stream usage, so the retry is
 * paid once, and estimates the usage of its streams instead.
 */
export class UpstreamQuirks {
  private readonly noStreamOptions = new Set<string>();

  rejectsStreamOptions(upstreamUrl: string): boolean {
    return this.noStreamOptions.has(upstreamUrl);
  }

  markRejectsStreamOptions(upstreamUrl: string): void {
    this.noStreamOptions.add(upstreamUrl);
  }
}

/** True when an upstream's 400 body blames the stream_options field the proxy added. */
export function blamesStreamOptions(body: string): boolean {
  return /stream_options|include_usage/i.test(body);
}
