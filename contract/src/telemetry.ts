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
  /** The endpoint as configured, for logs: an OTLP/HTTP base URL, or the traces URL itself. */
  readonly endpoint: string;
  /** Where spans are sent: `<base>/v1/traces`, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is. */
  readonly tracesUrl: string;
  /** Share of traces sampled, 0..1, by trace id. */
  readonly sampleRatio: number;
  /** An incoming traceparent's sampled flag decides instead of the ratio (the `parentbased_*` samplers). */
  readonly parentBased: boolean;
  readonly serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES, but service.name (serviceName says it): on every span's resource. */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  /** The OTLP/HTTP encoding: protobuf (OTLP's default) or JSON. */
  readonly protocol: OtlpProtocol;
  /** OTEL_BSP_SCHEDULE_DELAY: the longest a span waits before export, in ms; undefined for the exporter's default. */
  readonly scheduleDelayMs?: number;
}

/** OTEL_BSP_SCHEDULE_DELAY's range: from a millisecond to an hour (setTimeout wraps past ~24.8 days). */
const MAX_SCHEDULE_DELAY_MS = 3_600_000;

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
    /** What is wrong, without the variable's name (a config error's path names it). */
    readonly detail: string,
  ) {
    super(`${variable} ${detail}`);
    this.name = 'TelemetryEnvError';
  }
}

/**
 * The OTEL_TRACES_SAMPLER values taken: whether a caller's sampled flag decides, and the
 * ratio each one fixes (undefined: OTEL_TRACES_SAMPLER_ARG's, or the config's).
 */
const SAMPLERS = new Map<string, { parentBased: boolean; ratio: number | undefined }>([
  ['always_on', { parentBased: false, ratio: 1 }],
  ['always_off', { parentBased: false, ratio: 0 }],
  ['traceidratio', { parentBased: false, ratio: undefined }],
  ['parentbased_always_on', { parentBased: true, ratio: 1 }],
  ['parentbased_always_off', { parentBased: true, ratio: 0 }],
  ['parentbased_traceidratio', { parentBased: true, ratio: undefined }],
]);

/**
 * Config wins over the environment, key by key. Tracing is on when an endpoint is known from
 * either; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns it off whatever else
 * is set. Throws TelemetryEnvError for a malformed variable rather than silently tracing
 * nothing, or tracing what an operator asked to leave out.
 */
export function resolveTelemetry(
  config: TelemetryConfig | undefined,
  env: NodeJS.ProcessEnv,
  defaultServiceName: string,
): TelemetrySettings | undefined {
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase();
  if (disabled === 'true') return undefined;
  // The spec reads any other value as false; `yes` or `1` almost surely meant "off", and
  // taken as false it would export what the operator meant to keep in: refused instead.
  if (disabled !== undefined && disabled !== '' && disabled !== 'false')
    throw new TelemetryEnvError('OTEL_SDK_DISABLED', 'must be true or false');
  const exporters = env.OTEL_TRACES_EXPORTER?.split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  // A list naming otlp exports OTLP (the others, console say, are not ours to run); none
  // alone turns tracing off; a list of only other exporters is refused, not guessed at.
  if (exporters !== undefined && exporters.length > 0 && !exporters.includes('otlp')) {
    if (exporters.every((name) => name === 'none')) return undefined;
    throw new TelemetryEnvError(
      'OTEL_TRACES_EXPORTER',
      'must name otlp, or be none (only OTLP/HTTP is exported)',
    );
  }
  let endpoint = config?.otlp_endpoint;
  let url = endpoint === undefined ? undefined : tracesUrl(endpoint);
  if (endpoint === undefined) {
    // The signal's own variable wins, and is the traces URL as it is (the OTLP exporter spec).
    for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT']) {
      const fromEnv = env[variable]?.trim();
      if (!fromEnv) continue;
      const checked = otlpEndpointSchema.safeParse(fromEnv);
      if (!checked.success) throw new TelemetryEnvError(variable, checked.error.issues[0]?.message ?? '');
      endpoint = fromEnv;
      url = variable === 'OTEL_EXPORTER_OTLP_ENDPOINT' ? tracesUrl(fromEnv, false) : fromEnv;
      break;
    }
  }
  if (endpoint === undefined || url === undefined) return undefined;
  const samplerName = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase();
  const sampler = samplerName ? SAMPLERS.get(samplerName) : { parentBased: true, ratio: undefined };
  if (sampler === undefined)
    throw new TelemetryEnvError('OTEL_TRACES_SAMPLER', `must be one of ${[...SAMPLERS.keys()].join(', ')}`);
  let sampleRatio = config?.sample_ratio ?? sampler.ratio;
  if (sampleRatio === undefined) {
    const fromEnv = env.OTEL_TRACES_SAMPLER_ARG?.trim();
    if (fromEnv) {
      const checked = sampleRatioSchema.safeParse(/^[0-9.eE+-]+$/.test(fromEnv) ? Number(fromEnv) : NaN);
      if (!checked.success)
        throw new TelemetryEnvError('OTEL_TRACES_SAMPLER_ARG', 'must be a number from 0 to 1');
      sampleRatio = checked.data;
    }
  }
  const { 'service.name': resourceServiceName, ...resourceAttributes } = envResourceAttributes(env);
  // The spec's order: OTEL_SERVICE_NAME over OTEL_RESOURCE_ATTRIBUTES' service.name.
  const serviceName =
    config?.service_name ?? (env.OTEL_SERVICE_NAME?.trim() || resourceServiceName || defaultServiceName);
  return {
    endpoint,
    tracesUrl: url,
    sampleRatio: sampleRatio ?? 1,
    parentBased: sampler.parentBased,
    serviceName,
    resourceAttributes,
    protocol: config?.protocol ?? envProtocol(env),
    scheduleDelayMs: envScheduleDelay(env),
  };
}

/** Bounds on OTEL_RESOURCE_ATTRIBUTES: it goes into every export body. */
const RESOURCE_ATTRIBUTES_MAX = 64;
const RESOURCE_VALUE_MAX = 1_024;
const RESOURCE_KEY = /^[A-Za-z][A-Za-z0-9._\-/]{0,127}$/;

/**
 * OTEL_RESOURCE_ATTRIBUTES: `key=value` pairs separated by commas, values percent-encoded
 * (the W3C Baggage format the SDK spec names). A malformed pair refuses the variable whole,
 * naming it, as every other variable here does, rather than tracing under a half-read
 * resource.
 */
function envResourceAttributes(env: NodeJS.ProcessEnv): Record<string, string> {
  const text = env.OTEL_RESOURCE_ATTRIBUTES?.trim();
  const attributes: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!text) return attributes;
  const refuse = (why: string): never => {
    throw new TelemetryEnvError('OTEL_RESOURCE_ATTRIBUTES', `${why} (key=value pairs separated by commas)`);
  };
  const pairs = text.split(',').filter((pair) => pair.trim() !== '');
  if (pairs.length > RESOURCE_ATTRIBUTES_MAX) refuse(`at most ${RESOURCE_ATTRIBUTES_MAX} attributes`);
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals < 0) refuse(`"${pair.trim().slice(0, 40)}" has no =`);
    const key = pair.slice(0, equals).trim();
    if (!RESOURCE_KEY.test(key)) refuse('a key must be a letter then letters, digits, . _ - or /');
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(equals + 1).trim());
    } catch {
      return refuse(`the value of ${key} is not valid percent-encoding`);
    }
    if (value.length > RESOURCE_VALUE_MAX)
      refuse(`the value of ${key} is over ${RESOURCE_VALUE_MAX} characters`);
    attributes[key] = value;
  }
  return { ...attributes };
}

function envScheduleDelay(env: NodeJS.ProcessEnv): number | undefined {
  const text = env.OTEL_BSP_SCHEDULE_DELAY?.trim();
  if (!text) return undefined;
  const ms = /^[0-9]{1,7}$/.test(text) ? Number(text) : NaN;
  if (!(ms >= 1 && ms <= MAX_SCHEDULE_DELAY_MS))
    throw new TelemetryEnvError(
      'OTEL_BSP_SCHEDULE_DELAY',
      `must be a whole number of milliseconds from 1 to ${MAX_SCHEDULE_DELAY_MS}`,
    );
  return ms;
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

/**
 * The traces URL of an OTLP/HTTP base endpoint: `v1/traces` appended to its path, its query
 * kept (`http://c:4318/?token=abc` sends to `/v1/traces?token=abc`, not `/?token=abc/v1/traces`).
 * As OTEL_EXPORTER_OTLP_ENDPOINT means it, the path is appended even to one that already
 * ends in /v1/traces (the exporter spec); the config's `otlp_endpoint` (`fromConfig`) may
 * also be the traces URL itself.
 */
export function tracesUrl(endpoint: string, fromConfig = true): string {
  const url = new URL(endpoint);
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = fromConfig && path.endsWith('/v1/traces') ? path : `${path}/v1/traces`;
  return url.toString();
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
