/**
 * Turns a translated request's answer back into the client's API. It sits above the
 * metering stages, so they read the upstream's own bytes and this stage rewrites them
 * after. Streams are translated event by event as they arrive; a JSON answer (or an error
 * body) is held until complete, up to max_json_response_bytes, because a JSON document
 * cannot be rewritten in pieces. The status is always kept.
 */
import type { RequestContext } from '../context.js';
import type { Stage } from '../stage.js';
import type { StreamTranslator } from '../translate/translator.js';
import { createEventFramer, type EventFramer } from '../usage/event-framer.js';

const EMPTY = Buffer.alloc(0);

type Translation =
  | { readonly kind: 'stream'; readonly framer: EventFramer; readonly stream: StreamTranslator }
  | { readonly kind: 'json'; readonly ok: boolean; readonly status: number; chunks: Buffer[]; bytes: number };

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
      const ok = head.status >= 200 && head.status < 300;
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
      translations.set(ctx, { kind: 'json', ok, status: head.status, chunks: [], bytes: 0 });
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
          if (event) out += t.stream.push(event);
        }
        if (end) {
          out += t.stream.end();
          translations.delete(ctx);
        }
        return out === '' ? EMPTY : Buffer.from(out);
      }
      if (t.bytes <= ctx.runtime.config.max_json_response_bytes) {
        t.chunks.push(chunk);
        t.bytes += chunk.length;
      }
      if (!end) return EMPTY;
      translations.delete(ctx);
      const text = Buffer.concat(t.chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON (an HTML error page, a cut body): the translator gets the text.
      }
      const model = ctx.model ?? '';
      const translated = t.ok
        ? ctx.translator.response(body, { model })
        : ctx.translator.error(t.status, body);
      return Buffer.from(JSON.stringify(translated));
    },
  };
}
