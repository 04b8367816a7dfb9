/**
 * An OTLP/HTTP trace receiver on port 0: keeps every raw export body (to search for text
 * that must never be exported) and the spans decoded from it, protobuf or JSON by its
 * Content-Type. Protobuf is decoded by the official OpenTelemetry JS message types (the
 * protobufjs root generated inside @opentelemetry/otlp-transformer), so what the proxy
 * writes by hand is read by code it does not share. The official packages have no JSON
 * decoder; JSON is read with JSON.parse.
 */
import root from '@opentelemetry/otlp-transformer/build/src/generated/root.js';
import { startOtlpHttpServer } from './otlp-http-server.js';

/** The part of the generated protobufjs message type used here (its .d.ts types none of it). */
interface MessageType {
  decode(bytes: Uint8Array): unknown;
  toObject(
    message: unknown,
    options: { longs: typeof String; bytes: typeof String; enums: typeof Number },
  ): unknown;
}

const exportRequest = (
  root as unknown as {
    opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: MessageType } } } } };
  }
).opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

/** An export request decoded from protobuf, in the shape OTLP/JSON has (ids as hex). */
export function decodeProtobufExport(bytes: Uint8Array): Export {
  const decoded = exportRequest.toObject(exportRequest.decode(bytes), {
    longs: String,
    bytes: String,
    enums: Number,
  }) as Export;
  const hex = (base64: string | undefined) => Buffer.from(base64 ?? '', 'base64').toString('hex');
  for (const rs of decoded.resourceSpans ?? [])
    for (const ss of rs.scopeSpans ?? [])
      for (const span of ss.spans ?? []) {
        span.traceId = hex(span.traceId);
        span.spanId = hex(span.spanId);
        span.parentSpanId = hex(span.parentSpanId);
      }
  return decoded;
}

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
  /** Nanoseconds since the epoch, as a decimal string (a fixed64). */
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code?: number; message?: string };
  attributes: Record<string, string | number | boolean | undefined>;
  resource: Record<string, string | number | boolean | undefined>;
}

export interface OtlpReceiver {
  /** The base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT takes it. */
  url: string;
  spans: ReceivedSpan[];
  /** Every export body as received, read as UTF-8 (protobuf keeps strings as UTF-8 too). */
  bodies: string[];
  /** The Content-Type of each body. */
  contentTypes: string[];
  /** The path each body was posted to (only /v1/traces is decoded into `spans`). */
  paths: string[];
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
  for (const { key, value } of list ?? []) {
    // OTLP requires unique keys; a collector keeps one of two at random.
    if (Object.hasOwn(out, key)) throw new Error(`attribute ${key} appears twice in one span`);
    out[key] = valueOf(value);
  }
  return out;
}

export interface Export {
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
  const contentTypes: string[] = [];
  const paths: string[] = [];
  const http = await startOtlpHttpServer((req) => {
    const chunks: Buffer[] = [];
    return {
      data: (chunk) => chunks.push(chunk),
      end() {
        const bytes = Buffer.concat(chunks);
        const type = String(req.headers['content-type']);
        bodies.push(bytes.toString('utf8'));
        contentTypes.push(type);
        paths.push(req.url ?? '');
        if (req.url !== '/v1/traces') return;
        let parsed: Export;
        if (type.startsWith('application/x-protobuf')) parsed = decodeProtobufExport(bytes);
        else if (type.startsWith('application/json')) parsed = JSON.parse(bytes.toString('utf8')) as Export;
        else return;
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
                startTimeUnixNano: String(span.startTimeUnixNano),
                endTimeUnixNano: String(span.endTimeUnixNano),
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
    contentTypes,
    paths,
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
