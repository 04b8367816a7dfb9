/**
 * Trace export settings, shared by the proxy and the control plane: the zod schema of the
 * `telemetry:` config block and the standard OTEL_* environment, resolved into one value.
 *
 * This module imports no OpenTelemetry package on purpose: a service with tracing off must
 * not pay for loading the SDK. The SDK lives behind `@lanekeeper/contract/telemetry-provider`,
 * which callers import dynamically once they know tracing is on.
 */
import { z } from 'zod';
import { createOutageLog, type OutageLogger, type OutageLogOptions } from './logging.js';

/** Where and how much to trace; undefined everywhere means tracing is off. */
export interface TelemetrySettings {
  /** The OTLP/HTTP base URL (a collector's :4318); spans go to `<endpoint>/v1/traces`. */
  readonly endpoint: string;
  /** Share of new traces sampled, 0..1; an incoming traceparent's sampled flag wins. */
  readonly sampleRatio: number;
  readonly serviceName: string;
  /** The OTLP/HTTP encoding: protobuf (OTLP's default) or JSON. */
  readonly protocol: OtlpProtocol;
}

/**
 * The OTLP protocols spoken: OTLP/HTTP with protobuf (the spec's default) or JSON. gRPC is
 * refused rather than quietly sent as HTTP to a port that expects gRPC.
 */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;

export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

const PROTOCOL_MESSAGE = 'must be http/protobuf or http/json (gRPC is not supported)';

export const otlpProtocolSchema = z.enum(OTLP_PROTOCOLS, { message: PROTOCOL_MESSAGE });

/** An http(s) URL with a host: anything else (file://, a bare word) is refused. */
export const otlpEndpointSchema = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
    } catch {
      return false;
    }
  },
  { message: 'must be an http:// or https:// URL (an OTLP/HTTP collector, usually port 4318)' },
);

export const sampleRatioSchema = z
  .number({ message: 'must be a number from 0 to 1' })
  .min(0, { message: 'must be a number from 0 to 1' })
  .max(1, { message: 'must be a number from 0 to 1' });

/** The `telemetry:` config block; every key optional, each one winning over its OTEL_* variable. */
export const telemetryConfigSchema = z.strictObject({
  otlp_endpoint: otlpEndpointSchema.optional(),
  sample_ratio: sampleRatioSchema.optional(),
  service_name: z.string().min(1).max(200).optional(),
  protocol: otlpProtocolSchema.optional(),
});

export type TelemetryConfig = z.infer<typeof telemetryConfigSchema>;

/** A bad OTEL_* variable, named, so startup can fail with a clear message. */
export class TelemetryEnvError extends Error {
  readonly code = 'TELEMETRY_ERR_ENV';
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable} ${detail}`);
    this.name = 'TelemetryEnvError';
  }
}

/**
 * Config wins over the environment, key by key. Tracing is on when an endpoint is known from
 * either; `OTEL_SDK_DISABLED=true` turns it off whatever else is set. Throws
 * TelemetryEnvError for a malformed variable rather than silently tracing nothing.
 */
export function resolveTelemetry(
  config: TelemetryConfig | undefined,
  env: NodeJS.ProcessEnv,
  defaultServiceName: string,
): TelemetrySettings | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  let endpoint = config?.otlp_endpoint;
  if (endpoint === undefined) {
    const fromEnv = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
    if (!fromEnv) return undefined;
    const checked = otlpEndpointSchema.safeParse(fromEnv);
    if (!checked.success)
      throw new TelemetryEnvError('OTEL_EXPORTER_OTLP_ENDPOINT', checked.error.issues[0]?.message ?? '');
    endpoint = fromEnv;
  }
  let sampleRatio = config?.sample_ratio;
  if (sampleRatio === undefined) {
    const fromEnv = env.OTEL_TRACES_SAMPLER_ARG?.trim();
    if (fromEnv) {
      const checked = sampleRatioSchema.safeParse(/^[0-9.eE+-]+$/.test(fromEnv) ? Number(fromEnv) : NaN);
      if (!checked.success)
        throw new TelemetryEnvError('OTEL_TRACES_SAMPLER_ARG', 'must be a number from 0 to 1');
      sampleRatio = checked.data;
    }
  }
  const serviceName = config?.service_name ?? (env.OTEL_SERVICE_NAME?.trim() || defaultServiceName);
  return {
    endpoint,
    sampleRatio: sampleRatio ?? 1,
    serviceName,
    protocol: config?.protocol ?? envProtocol(env),
  };
}

/** The traces protocol variable wins over the general one, as the OTLP exporter spec says. */
function envProtocol(env: NodeJS.ProcessEnv): OtlpProtocol {
  for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const value = env[variable]?.trim();
    if (!value) continue;
    const checked = otlpProtocolSchema.safeParse(value);
    if (!checked.success) throw new TelemetryEnvError(variable, PROTOCOL_MESSAGE);
    return checked.data;
  }
  return 'http/protobuf';
}

/** The traces URL of an OTLP/HTTP base endpoint (as OTEL_EXPORTER_OTLP_ENDPOINT means it). */
export function tracesUrl(endpoint: string): string {
  const trimmed = endpoint.replace(/\/+$/, '');
  return trimmed.endsWith('/v1/traces') ? trimmed : `${trimmed}/v1/traces`;
}

/**
 * The endpoint as logs may show it: a collector URL can carry credentials (user:password@)
 * or a token in its query, and neither belongs in a log line.
 */
export function endpointForLogs(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    if (!url.username && !url.password && !url.search) return endpoint;
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return '(invalid url)';
  }
}

/** The dependency name trace export outages are logged under. */
export const TRACE_EXPORT_DEPENDENCY = 'trace export (otlp)';

/**
 * What both services hand the tracer provider as `onExportError`: every export result goes
 * into one outage log, so a collector that is down reads like any other dependency (one
 * warning, a summary a minute with the count of failed batches, one line when it is back),
 * with the endpoint on every line.
 */
export function traceExportReporter(
  logger: OutageLogger,
  endpoint: string,
  options: Omit<OutageLogOptions, 'fields'> = {},
): (error: Error | undefined) => void {
  const outage = createOutageLog(logger, TRACE_EXPORT_DEPENDENCY, {
    ...options,
    fields: { endpoint: endpointForLogs(endpoint) },
  });
  return (error) => (error ? outage.failed(error) : outage.succeeded());
}
