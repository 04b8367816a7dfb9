/**
 * Tracing for the control plane, configured by the standard OTEL_* variables
 * (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER_ARG, OTEL_SERVICE_NAME,
 * OTEL_BSP_SCHEDULE_DELAY). Off without an endpoint; then nothing below trace-hooks.ts is
 * loaded, OpenTelemetry included.
 */
import {
  TENANT_ID_PATTERN,
  endpointForLogs,
  resolveTelemetry,
  TelemetryEnvError,
  traceExportReporter,
} from '@lanekeeper/contract';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { BookingResult } from './ledger/book-events.js';

export const SERVICE_NAME = 'lanekeeper-control-plane';

/** The tenant a call is about (the path's id on /v1/tenants/:id…), for spans and log lines; only an id the pattern allows. */
export function tenantOf(route: string | undefined, params: unknown): string | undefined {
  if (route === undefined || !route.startsWith('/v1/tenants/:id')) return undefined;
  const id = (params as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' && TENANT_ID_PATTERN.test(id) ? id : undefined;
}

/** What the app and the ledger are handed when tracing is on. */
export interface ControlPlaneTracing {
  /** Adds one SERVER span per request to the app (called before routes are registered). */
  traceHttp(app: FastifyInstance): void;
  /**
   * One span for a request the router refused before any route or hook (app.ts
   * `frameworkErrors`), called once its answer is sent.
   */
  traceUnrouted(request: FastifyRequest, reply: FastifyReply): void;
  /** The trace id of a request's span, when it is sampled: for its log lines. */
  traceIdOf(request: FastifyRequest): string | undefined;
  /** Runs one ledger batch's booking inside a span. */
  traceBatch(entries: number, book: () => Promise<BookingResult>): Promise<BookingResult>;
  shutdown(): Promise<void>;
}

export async function startControlPlaneTracing(
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<ControlPlaneTracing | undefined> {
  let settings;
  try {
    settings = resolveTelemetry(undefined, env, SERVICE_NAME);
  } catch (error) {
    if (error instanceof TelemetryEnvError) throw new Error(`invalid environment: ${error.message}`);
    throw error;
  }
  if (!settings) return undefined;
  const { createControlPlaneTracing } = await import('./trace-hooks.js');
  const tracing = createControlPlaneTracing(settings, {
    scheduledDelayMs: settings.scheduleDelayMs,
    onExportError: traceExportReporter(logger, settings.endpoint),
  });
  logger.info(
    {
      endpoint: endpointForLogs(settings.endpoint),
      sample_ratio: settings.sampleRatio,
      parent_based: settings.parentBased,
    },
    'tracing on',
  );
  return tracing;
}
