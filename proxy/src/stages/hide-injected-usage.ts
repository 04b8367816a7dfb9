/**
 * Metering a stream needs the upstream to report usage, which some dialects only do when
 * asked (OpenAI's stream_options.include_usage). When the client did not ask, this stage
 * asks on its behalf and hides the result again: the usage-only event is dropped and any
 * field the request added is removed, so the client's stream is what it would have been.
 * Bytes of all other events pass unchanged; only an unfinished event is held back.
 */
import type { RequestContext } from '../context.js';
import { createEventFramer, hideInjectedUsageBlock, type EventFramer } from '../usage/event-framer.js';
import { blockTooDeepForJson } from '../usage/json-depth.js';
import { CONTINUE, type Stage } from '../stage.js';
import type { UpstreamQuirks } from '../upstream-quirks.js';

const USAGE_BYTES = Buffer.from('"usage"');
const EMPTY = Buffer.alloc(0);

export function createHideInjectedUsageStage(deps: { quirks: UpstreamQuirks }): Stage {
  const framers = new WeakMap<RequestContext, EventFramer>();
  return {
    name: 'hide-injected-usage',
    onRequest(ctx) {
      const { dialect, route } = ctx;
      if (!ctx.stream || !dialect?.requestStreamUsage || !route || !ctx.request.body) return CONTINUE;
      if (deps.quirks.rejectsStreamOptions(ctx.upstream?.config.url ?? '')) return CONTINUE;
      if (dialect.requestStreamUsage(ctx.request, route)) {
        ctx.usageInjected = true;
        ctx.bodyChanged = true;
      }
      return CONTINUE;
    },
    onResponseHeaders(ctx, head) {
      // A translated stream is rebuilt by its translator, which adds usage only when asked.
      if (ctx.usageInjected && !ctx.translator && head.status >= 200 && head.status < 300 && ctx.dialect) {
        // The meter's framer when it cuts this stream (it runs first, and in the same format).
        const sameFormat = (ctx.upstreamDialect ?? ctx.dialect).streamFormat === ctx.dialect.streamFormat;
        const shared = sameFormat ? ctx.streamFrames?.framer : undefined;
        framers.set(ctx, shared ?? createEventFramer(ctx.dialect.streamFormat));
      }
    },
    onResponseChunk(ctx, chunk, end) {
      const framer = framers.get(ctx);
      const dialect = ctx.dialect;
      if (!framer || !dialect || (!dialect.hideInjectedUsage && !dialect.hideInjectedUsageInBlock))
        return chunk;
      // meter-usage, just below, already cut this very chunk (it passes chunks on unchanged).
      const shared = ctx.streamFrames;
      let blocks: readonly Buffer[];
      if (shared && shared.framer === framer) {
        // Never the case while meter-usage passes chunks on as they came; if it ever were,
        // the bytes still go out whole rather than from blocks of another chunk.
        if (shared.chunk !== chunk || shared.end !== end) return chunk;
        blocks = shared.blocks;
      } else {
        const own = framer.push(chunk);
        if (end) own.push(framer.end());
        blocks = own;
      }
      const out: Buffer[] = [];
      // A dialect's byte-level rewrite finds the field itself; only the event-level one
      // needs this search to stay off blocks without usage.
      const search = !dialect.hideInjectedUsageInBlock;
      for (const block of blocks) {
        if (block.length === 0) continue;
        // An event nested too deep to be the usage event is not read (json-depth.ts).
        if ((search && block.indexOf(USAGE_BYTES) < 0) || blockTooDeepForJson(block)) {
          out.push(block);
          continue;
        }
        const kept = hideInjectedUsageBlock(framer, dialect, block);
        if (kept) out.push(kept);
      }
      if (end) framers.delete(ctx);
      return out.length === 0 ? EMPTY : out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
    },
  };
}
