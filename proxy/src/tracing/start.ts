/**
 * Turns the `telemetry:` block and the OTEL_* environment into a RequestTracer, or nothing.
 * The tracer, and the OpenTelemetry packages it uses, are imported only here, dynamically,
 * and only when tracing is on: a proxy without telemetry never loads them.
 */
import {
  endpointForLogs,
  resolveTelemetry,
  TelemetryEnvError,
  traceExportReporter,
  type OutageLogOptions,
  type TelemetryConfig,
} from '@lanekeeper/contract';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RequestTracer } from './request-trace.js';

export const DEFAULT_SERVICE_NAME = 'lanekeeper-proxy';

export interface RequestTracerOptions {
  /** How long spans wait to be batched before export; wins over OTEL_BSP_SCHEDULE_DELAY (default 2 s). */
  readonly exportDelayMs?: number;
  /** How the export outage log keeps time (default: the wall clock, a summary a minute). */
  readonly exportOutage?: Omit<OutageLogOptions, 'fields'>;
}

export async function startRequestTracer(
  config: TelemetryConfig | undefined,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  options: RequestTracerOptions = {},
): Promise<RequestTracer | undefined> {
  let settings;
  try {
    settings = resolveTelemetry(config, env, DEFAULT_SERVICE_NAME);
  } catch (error) {
    if (error instanceof TelemetryEnvError)
      throw new ConfigError([{ path: error.variable, message: error.detail }]);
    throw error;
  }
  if (!settings) return undefined;
  const { createOtelRequestTracer } = await import('./otel-request-tracer.js');
  const tracer = createOtelRequestTracer(settings, {
    scheduledDelayMs: options.exportDelayMs ?? settings.scheduleDelayMs,
    onExportResult: traceExportReporter(logger, settings.endpoint, options.exportOutage),
  });
  logger.info(
    {
      endpoint: endpointForLogs(settings.endpoint),
      sample_ratio: settings.sampleRatio,
      parent_based: settings.parentBased,
      service_name: settings.serviceName,
    },
    'tracing on',
  );
  return tracer;
}
