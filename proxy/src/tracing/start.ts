/**
 * Turns the `telemetry:` block and the OTEL_* environment into a RequestTracer, or nothing.
 * The OpenTelemetry SDK is imported only here, dynamically, and only when tracing is on:
 * a proxy without telemetry never loads it.
 */
import {
  createOutageLog,
  resolveTelemetry,
  TelemetryEnvError,
  type TelemetryConfig,
} from '@lanekeeper/contract';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RequestTracer } from './request-trace.js';

export const DEFAULT_SERVICE_NAME = 'lanekeeper-proxy';

export async function startRequestTracer(
  config: TelemetryConfig | undefined,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  exportDelayMs?: number,
): Promise<RequestTracer | undefined> {
  let settings;
  try {
    settings = resolveTelemetry(config, env, DEFAULT_SERVICE_NAME);
  } catch (error) {
    if (error instanceof TelemetryEnvError)
      throw new ConfigError([{ path: error.variable, message: error.message }]);
    throw error;
  }
  if (!settings) return undefined;
  const { createOtelRequestTracer } = await import('./otel-request-tracer.js');
  const outage = createOutageLog(logger, 'trace export (otlp)');
  const tracer = createOtelRequestTracer(settings, {
    scheduledDelayMs: exportDelayMs,
    // One line when export starts failing, a summary a minute, one when it is back; never a
    // stack per batch: requests are unaffected either way.
    onExportResult: (error) => (error ? outage.failed(error) : outage.succeeded()),
  });
  logger.info(
    { endpoint: settings.endpoint, sample_ratio: settings.sampleRatio, service_name: settings.serviceName },
    'tracing on',
  );
  return tracer;
}
