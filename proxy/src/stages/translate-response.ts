/**
 * Turns a translated request's answer back into the client's API. It sits above the
 * metering stages, so they read the upstream's own bytes and this stage rewrites them
 * after. Streams are translated event by event as they arrive; a JSON answer (or an error
 * body) is held until complete, up to max_json_response_bytes, because a JSON document
 * cannot be rewritten in pieces. The status is kept, except for a JSON answer over that
 * size: it is a 502 in the client's error shape, since what was kept of it is no JSON.
 */
import type { RequestContext } from '../context.js';
import type { ResponseHead, Stage } from '../stage.js';
import type { StreamTranslator } from '../translate/translator.js';
import { createEventFramer, type EventFramer } from '../usage/event-framer.js';
import { tooDeepForJson } from '../usage/json-depth.js';

const EMPTY = Buffer.alloc(0);

type Translation =
  | { readonly kind: 'stream'; readonly framer: EventFramer; readonly stream: StreamTranslator }
  | {
      readonly kind: 'json';
      /** The upstream's status until the answer is complete (held: see onResponseHeaders). */
      readonly head: ResponseHead;
      chunks: Buffer[];
      bytes: number;
      /** A chunk past max_json_response_bytes was dropped: the answer cannot be translated. */
      cut: boolean;
    };

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** Whether the client asked for usage in its stream (OpenAI's stream_options.include_usage). */
function clientWantsUsage(ctx: RequestContext): boolean {
  if (ctx.usageInjected) return false;
  const options = ctx.request.body?.stream_options as { include_usage?: unknown } | undefined;
  return options?.include_usage === true;
}

export function createTranslateResponseStage(): Stage {
  const translations = new WeakMap<RequestContext, Translation>();
  return {
    name: 'translate-response',
    onResponseHeaders(ctx, head) {
      const translator = ctx.translator;
      const upstream = ctx.upstreamDialect;
      if (!translator || !upstream || ctx.outcome === 'local_reply' || ctx.errorCode) return;
      const ok = isSuccess(head.status);
      const type = String(head.headers['content-type'] ?? '');
      delete head.headers['content-length'];
      if (ok && ctx.stream && !/json/i.test(type.replace(/x-ndjson/i, ''))) {
        head.headers['content-type'] = 'text/event-stream; charset=utf-8';
        head.headers['cache-control'] = 'no-cache';
        translations.set(ctx, {
          kind: 'stream',
          framer: createEventFramer(upstream.streamFormat),
          stream: translator.stream({ model: ctx.model ?? '', includeUsage: clientWantsUsage(ctx) }),
        });
        return;
      }
      head.headers['content-type'] = 'application/json';
      // Held: an answer too big to translate becomes a 502, not a 200 with an empty answer.
      head.held = true;
      translations.set(ctx, { kind: 'json', head, chunks: [], bytes: 0, cut: false });
    },
    onResponseChunk(ctx, chunk, end) {
      // Most requests are not translated: a property read, not a map lookup, per chunk.
      if (!ctx.translator) return chunk;
      const t = translations.get(ctx);
      if (!t) return chunk;
      if (t.kind === 'stream') {
        const blocks = t.framer.push(chunk);
        if (end) blocks.push(t.framer.end());
        let out = '';
        for (const block of blocks) {
          const event = block.length > 0 ? t.framer.eventOf(block) : undefined;
          // An event nested too deep to be any provider's is dropped unparsed (json-depth.ts).
          if (event && !tooDeepForJson(event.data)) out += t.stream.push(event);
        }
        if (end) {
          out += t.stream.end();
          translations.delete(ctx);
        }
        return out === '' ? EMPTY : Buffer.from(out);
      }
      const limit = ctx.runtime.config.max_json_response_bytes;
      if (t.bytes <= limit) {
        t.chunks.push(chunk);
        t.bytes += chunk.length;
      } else if (chunk.length > 0) t.cut = true;
      if (!end) return EMPTY;
      translations.delete(ctx);
      if (t.cut) {
        t.head.status = 502;
        const message = `The upstream's answer is larger than this service translates (max_json_response_bytes, ${limit} bytes).`;
        return Buffer.from(
          JSON.stringify(ctx.translator.error(502, { error: { type: 'api_error', message } })),
        );
      }
      const text = Buffer.concat(t.chunks).toString('utf8');
      let body: unknown = text;
      try {
        if (!tooDeepForJson(text)) body = JSON.parse(text);
      } catch {
        // Not JSON (an HTML error page, a cut body, nesting no answer has): the translator
        // gets the text.
      }
      const model = ctx.model ?? '';
      const status = t.head.status;
      const translated = isSuccess(status)
        ? ctx.translator.response(body, { model })
        : ctx.translator.error(status, body);
      return Buffer.from(JSON.stringify(translated));
    },
  };
}
