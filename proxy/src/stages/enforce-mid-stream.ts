/**
 * Optional mid-stream enforcement (`enforce_mid_stream: true` on a plan). Reservations
 * already cap a request's output at what the tenant has left, but an upstream may ignore
 * the cap (custom services, some self-hosted servers). This stage counts the output as it
 * streams and, once it passes the allowance granted at admission, ends the stream at an
 * event boundary with a final event in the client's dialect saying why. The upstream is
 * then aborted, and what was used is metered. Last in the pipeline, so it sees the
 * upstream's bytes first; only plans that opt in pay for its per-event parsing.
 */
import type { RequestContext } from '../context.js';
import type { StreamEvent } from '../dialects/dialect.js';
import { estimateOutputTokens } from '../usage/estimate.js';
import { createEventFramer, type EventFramer } from '../usage/event-framer.js';
import type { Stage } from '../stage.js';

const EMPTY = Buffer.alloc(0);
const TAIL_CHARS = 32;

interface Watch {
  framer: EventFramer;
  allowance: number;
  /** Output counted so far with the tokenizer the meter uses. */
  tokens: number;
  /** The end of the text so far: a token can span two deltas, so each delta is counted in its context. */
  tail: string;
  reportedOutput: number;
  /** The prompt's count, once the upstream has reported it (Anthropic and Gemini do early). */
  reportedInput: number | undefined;
  done: boolean;
}

function outputSoFar(watch: Watch): number {
  return Math.max(watch.reportedOutput, watch.tokens);
}

export function createEnforceMidStreamStage(): Stage {
  const watches = new WeakMap<RequestContext, Watch>();
  return {
    name: 'enforce-mid-stream',
    onResponseHeaders(ctx, head) {
      // Every choice may use the cap, and the stream carries all of them.
      const allowance =
        ctx.maxOutputTokens === undefined ? undefined : ctx.maxOutputTokens * ctx.outputChoices;
      // The upstream's bytes, in its own dialect: a translated stream is cut before translation.
      const dialect = ctx.upstreamDialect ?? ctx.dialect;
      if (!ctx.tenant?.plan.enforce_mid_stream || !ctx.stream || !dialect || allowance === undefined) return;
      if (!ctx.reservation || head.status < 200 || head.status >= 300) return;
      // Only event streams have boundaries to cut at; a JSON-array stream (Gemini without
      // alt=sse) would make the framer hold the whole body.
      if (!/text\/event-stream|ndjson/i.test(String(head.headers['content-type'] ?? ''))) return;
      watches.set(ctx, {
        framer: createEventFramer(dialect.streamFormat),
        allowance,
        tokens: 0,
        tail: '',
        reportedOutput: 0,
        reportedInput: undefined,
        done: false,
      });
    },
    onResponseChunk(ctx, chunk, end) {
      const watch = watches.get(ctx);
      const dialect = ctx.upstreamDialect ?? ctx.dialect;
      const route = ctx.upstreamRoute ?? ctx.route;
      if (!watch || !dialect || !route) return chunk;
      if (watch.done) return EMPTY;
      const blocks = watch.framer.push(chunk);
      if (end) blocks.push(watch.framer.end());
      const out: Buffer[] = [];
      for (const block of blocks) {
        const event: StreamEvent | undefined = block.length > 0 ? watch.framer.eventOf(block) : undefined;
        if (event) {
          const text = dialect.textFromEvent(event, route);
          if (text) {
            const joined = watch.tail + text;
            watch.tokens += estimateOutputTokens([joined]) - estimateOutputTokens([watch.tail]);
            watch.tail = joined.slice(-TAIL_CHARS);
          }
          if (dialect.usageHint(event)) {
            const usage = dialect.usageFromEvent(event, route)?.usage;
            if (usage?.output !== undefined) watch.reportedOutput = usage.output;
            if (usage?.input !== undefined) watch.reportedInput = usage.input;
          }
        }
        if (outputSoFar(watch) > watch.allowance) {
          watch.done = true;
          ctx.cutoff = 'output passed the tenant allowance';
          if (dialect.cutoffEvent) {
            // The figures the meter will book: the prompt as reported, else as estimated at
            // admission (meter-usage falls back the same way). Left out where the client's
            // own stream would not have carried usage, so it keeps its shape; a translator
            // always gets them, and shows them as the client's dialect does.
            const usage =
              ctx.translator || (dialect.streamReportsUsage?.(ctx.request, route) ?? true)
                ? { input: watch.reportedInput ?? ctx.estimatedPromptTokens, output: outputSoFar(watch) }
                : undefined;
            const reason = "The tenant's remaining token or spend allowance is used up.";
            out.push(Buffer.from(dialect.cutoffEvent(route, reason, usage)));
          }
          break;
        }
        out.push(block);
      }
      return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
    },
  };
}
