/**
 * An OTLP/HTTP trace receiver on port 0: keeps every raw export body (to search for text
 * that must never be exported) and the spans decoded from OTLP JSON.
 */
import { startOtlpHttpServer } from './otlp-http-server.js';

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
};

/** A span as the test reads it: ids in hex, attributes as plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  status: { code?: number; message?: string };
  attributes: Record<string, string | number | boolean | undefined>;
  resource: Record<string, string | number | boolean | undefined>;
}

export interface OtlpReceiver {
  /** The base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT takes it. */
  url: string;
  spans: ReceivedSpan[];
  /** Every export body as received (JSON text). */
  bodies: string[];
  /** Resolves when a span matches, or rejects after `timeoutMs`. */
  waitFor(match: (span: ReceivedSpan) => boolean, timeoutMs?: number): Promise<ReceivedSpan>;
  close(): Promise<void>;
}

function valueOf(value: AnyValue): string | number | boolean | undefined {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  return value.boolValue;
}

function attributesOf(list: { key: string; value: AnyValue }[] | undefined) {
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const { key, value } of list ?? []) out[key] = valueOf(value);
  return out;
}

interface Export {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: AnyValue }[] };
    scopeSpans?: {
      spans?: (Omit<ReceivedSpan, 'attributes' | 'resource'> & {
        attributes?: { key: string; value: AnyValue }[];
      })[];
    }[];
  }[];
}

/** `port` brings a receiver back where an earlier one was (default: any free port). */
export async function startOtlpReceiver(options: { port?: number } = {}): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  const http = await startOtlpHttpServer((req) => {
    const chunks: Buffer[] = [];
    return {
      data: (chunk) => chunks.push(chunk),
      end() {
        const text = Buffer.concat(chunks).toString('utf8');
        bodies.push(text);
        if (req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json'))
          return;
        const parsed = JSON.parse(text) as Export;
        for (const rs of parsed.resourceSpans ?? []) {
          const resource = attributesOf(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? [])
            for (const span of ss.spans ?? [])
              spans.push({
                traceId: span.traceId,
                spanId: span.spanId,
                parentSpanId: span.parentSpanId ?? '',
                name: span.name,
                kind: span.kind,
                status: span.status ?? {},
                attributes: attributesOf(span.attributes),
                resource,
              });
        }
      },
    };
  }, options.port);
  return {
    url: http.url,
    spans,
    bodies,
    async waitFor(match, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = spans.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching span among ${spans.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => http.close(),
  };
}
