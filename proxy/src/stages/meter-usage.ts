/**
 * Measures what a response cost, without changing a byte of it. Streams go through the
 * dialect's incremental tap; JSON bodies are collected (up to a cap) and parsed once at the
 * end; one over that cap is metered from its last 64 KiB, where every dialect puts its
 * usage. Figures no answer can have are clamped and booked as `invalid`. When the upstream
 * reports no usage, or the exchange was cut short, output is
 * estimated and the record says so (`estimated` or `partial`), so billing can tell. The
 * finished record is priced and written to the store as a usage event.
 */
import type { RequestContext } from '../context.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Stage } from '../stage.js';
import type { Store } from '../store/store.js';
import { costOf, priceOf } from '../usage/cost.js';
import { estimateOutputTokens } from '../usage/estimate.js';
import { createStreamTap, usageFromJsonBody, type StreamTap } from '../usage/stream-tap.js';
import { ByteTail, usageShapeFromTail } from '../usage/json-tail.js';
import { hasUsage, mergeUsage, sanitiseUsage } from '../usage/usage.js';
import { usageEventOf } from '../usage/usage-event.js';

interface MeterState {
  tap: StreamTap | undefined;
  json: Buffer[] | undefined;
  jsonBytes: number;
  overCap: boolean;
  /** The end of a JSON body over max_json_response_bytes, where its usage is. */
  tail: ByteTail | undefined;
}

const EMPTY = Buffer.alloc(0);

/** A generous bytes-per-token for an answer whose usage is missing: JSON framing makes it high. */
const BYTES_PER_TOKEN = 4;

function isStreamContent(type: string | undefined): boolean {
  return type !== undefined && /text\/event-stream|ndjson|jsonl/i.test(type);
}

/**
 * Output tokens of an answer that reported none: a stream's from its text, a JSON body's from
 * its size (its text is not pulled out of each dialect's shape; counted as none, a server
 * that leaves usage out had every non-streamed answer booked at zero output).
 */
function outputEstimate(state: MeterState, texts: string[]): number {
  return state.tap ? estimateOutputTokens(texts) : Math.ceil(state.jsonBytes / BYTES_PER_TOKEN);
}

export function createMeterUsageStage(deps: { store: Store; logger: Logger; metrics: Metrics }): Stage {
  const states = new WeakMap<RequestContext, MeterState>();
  return {
    name: 'meter-usage',
    onResponseHeaders(ctx, head) {
      // The upstream's own bytes, in its own dialect (before any translation): billing reads
      // exactly what the provider reported.
      const dialect = ctx.upstreamDialect ?? ctx.dialect;
      const route = ctx.upstreamRoute ?? ctx.route;
      if (!ctx.tenant || !dialect || !route?.metered || ctx.outcome === 'local_reply' || ctx.errorCode)
        return;
      const type = String(head.headers['content-type'] ?? '');
      const streaming = isStreamContent(type) || (ctx.stream && !/json/i.test(type));
      const tap = streaming ? createStreamTap(dialect, route) : undefined;
      // Only the usage hider reads the blocks again: publish them when it will run.
      if (tap && ctx.usageInjected && !ctx.translator) {
        ctx.streamFrames = { framer: tap.framer, chunk: EMPTY, end: false, blocks: [] };
      }
      states.set(ctx, {
        tap,
        json: streaming ? undefined : [],
        jsonBytes: 0,
        overCap: false,
        tail: undefined,
      });
    },
    onResponseChunk(ctx, chunk, end) {
      const state = states.get(ctx);
      if (!state) return chunk;
      if (state.tap) {
        // Cut once, here; hide-injected-usage, next up, reads the same blocks (ctx.streamFrames).
        const framer = state.tap.framer;
        const blocks = chunk.length === 0 ? [] : framer.push(chunk);
        if (end) blocks.push(framer.end());
        state.tap.pushBlocks(blocks);
        const frames = ctx.streamFrames;
        if (frames) {
          frames.chunk = chunk;
          frames.end = end;
          frames.blocks = blocks;
        }
      } else if (chunk.length === 0) {
        return chunk;
      } else if (state.tail) {
        state.jsonBytes += chunk.length;
        state.tail.push(chunk);
      } else if (state.json && !state.overCap) {
        state.jsonBytes += chunk.length;
        if (state.jsonBytes > ctx.runtime.config.max_json_response_bytes) {
          state.overCap = true;
          state.tail = new ByteTail();
          for (const held of state.json) state.tail.push(held);
          state.tail.push(chunk);
          state.json = undefined;
        } else {
          state.json.push(chunk);
        }
      }
      return chunk;
    },
    async onResponseEnd(ctx) {
      const state = states.get(ctx);
      const dialect = ctx.upstreamDialect ?? ctx.dialect;
      const route = ctx.upstreamRoute ?? ctx.route;
      if (!dialect || !route || !ctx.tenant) return;
      if (!state) {
        if (route.metered && ctx.upstreamUnanswered) await recordUnanswered(ctx);
        return;
      }
      states.delete(ctx);
      let texts: string[] = [];
      /** An error event inside a stream the upstream answered 200: the answer was cut short. */
      let streamError = false;
      if (state.tap) {
        const result = state.tap.end();
        ctx.usage = mergeUsage(ctx.usage, result.usage);
        ctx.upstreamModel = result.model ?? ctx.upstreamModel;
        texts = result.texts;
        streamError = result.error !== undefined;
      } else if (state.json) {
        const observation = usageFromJsonBody(dialect, route, Buffer.concat(state.json, state.jsonBytes));
        ctx.usage = mergeUsage(ctx.usage, observation?.usage);
        ctx.upstreamModel = observation?.model ?? ctx.upstreamModel;
      } else if (state.tail) {
        const shape = usageShapeFromTail(state.tail.bytes());
        const observation = shape ? dialect.usageFromJson(shape, route) : undefined;
        ctx.usage = mergeUsage(ctx.usage, observation?.usage);
        ctx.upstreamModel = observation?.model ?? ctx.upstreamModel;
      }

      const { usage: clamped, invalid } = sanitiseUsage(ctx.usage);
      if (invalid.length > 0) {
        ctx.usage = clamped;
        const tenant = deps.metrics.tenantLabel(ctx.tenant.id);
        for (const figure of invalid) deps.metrics.usageInvalid.inc({ tenant, field: figure.field });
        deps.logger.warn(
          {
            request_id: ctx.id,
            tenant: ctx.tenant.id,
            invalid: invalid.map((f) => ({ field: f.field, value: String(f.value) })),
          },
          'the upstream reported usage no answer can have: clamped and booked as invalid',
        );
      }

      // A stream's figures are final only once its output figure came: Anthropic reports the
      // input when a stream starts and the output only in its closing message_delta, which a
      // stream cut by a mid-stream error (overloaded_error) never sends. Taking the input
      // alone for a report booked every such answer at 0 output. A whole JSON body is the
      // upstream's last word: a figure missing from it is one it did not count.
      const reported =
        state.tap && route.generates !== false ? ctx.usage.output !== undefined : hasUsage(ctx.usage);
      // A client that left while the proxy drained the upstream to its end still gets the
      // provider's own final figures (drain_on_client_abort).
      const complete =
        !streamError &&
        (ctx.outcome === 'completed' || (ctx.outcome === 'client_aborted' && ctx.upstreamEnded));
      if (invalid.length > 0) {
        ctx.provenance = 'invalid';
      } else if (reported && complete && ctx.usage.input === undefined) {
        // Output reported, input not: Ollama leaves prompt_eval_count out when the prompt
        // came from its cache, as some OpenAI-compatible servers leave prompt_tokens. Booked
        // as 0, a tenant repeating a long prompt was charged its output alone.
        ctx.provenance = 'estimated';
        ctx.usage = { ...ctx.usage, input: ctx.estimatedPromptTokens };
      } else if (reported && complete) {
        ctx.provenance = 'reported';
      } else if ((ctx.status ?? 0) >= 400 && complete && !reported) {
        // The upstream refused the request: nothing was generated, and nothing is charged.
        ctx.usage = { input: 0, output: 0 };
        ctx.provenance = 'reported';
      } else {
        ctx.provenance = complete ? 'estimated' : 'partial';
        // A zero is no figure here: a stream cut off before its final report may have carried
        // only the zero placeholders some servers put on early chunks (the tap kept the text).
        ctx.usage = {
          ...ctx.usage,
          input: ctx.usage.input || ctx.estimatedPromptTokens,
          output: ctx.usage.output || (route.generates === false ? 0 : outputEstimate(state, texts)),
        };
      }
      await priceAndRecord(ctx);
    },
  };

  /**
   * A call the upstream took and never answered: the client hung up before the answer's
   * head, or the upstream passed its timeout (504). The provider has the prompt and bills
   * it, so the tenant is charged its estimate (output unknown, so none), as `partial`.
   * Without this, large prompts sent and abandoned before the first byte cost a tenant
   * nothing against tokens_per_hour or its budget.
   */
  async function recordUnanswered(ctx: RequestContext): Promise<void> {
    ctx.provenance = 'partial';
    ctx.usage = { input: ctx.estimatedPromptTokens, output: 0 };
    await priceAndRecord(ctx);
  }

  async function priceAndRecord(ctx: RequestContext): Promise<void> {
    const price =
      ctx.price ?? (ctx.upstreamModel ? priceOf(ctx.runtime.config.pricing, ctx.upstreamModel) : undefined);
    ctx.costUsd = costOf(ctx.usage, price);
    const event = usageEventOf(ctx);
    if (!event) return;
    try {
      await deps.store.record(event);
    } catch (error) {
      deps.logger.error({ err: error, request_id: ctx.id }, 'recording a usage event failed');
    }
  }
}
