/**
 * The proxy, as an ordered list of stages. Request hooks run top to bottom; response hooks
 * run bottom to top, so the stages nearest the upstream see its bytes first (meter-usage
 * reads the raw stream before hide-injected-usage edits it) and record-metrics, first here,
 * sees the final result last. Header hooks (onHeaders) run top to bottom too, before the
 * body is read: parse-request's names the dialect, identify-tenant's refuses strangers.
 */
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Stage } from './stage.js';
import { createApplyPlanStage } from './stages/apply-plan.js';
import { createCheckEndpointStage } from './stages/check-endpoint.js';
import { createCheckRateLimitStage } from './stages/check-rate-limit.js';
import { createDebitQuotaStage } from './stages/debit-quota.js';
import { createEnforceMidStreamStage } from './stages/enforce-mid-stream.js';
import { createHideInjectedUsageStage } from './stages/hide-injected-usage.js';
import { createIdentifyTenantStage } from './stages/identify-tenant.js';
import { createInjectIdentityStage } from './stages/inject-identity.js';
import { createMeterUsageStage } from './stages/meter-usage.js';
import { createParseRequestStage } from './stages/parse-request.js';
import { createRecordMetricsStage } from './stages/record-metrics.js';
import { createRedactUpstreamSecretsStage } from './stages/redact-upstream-secrets.js';
import { createRouteUpstreamStage } from './stages/route-upstream.js';
import { createRouteVectorStage } from './stages/route-vector.js';
import { createTranslateResponseStage } from './stages/translate-response.js';
import type { Store } from './store/store.js';
import type { UpstreamQuirks } from './upstream-quirks.js';
import type { UpstreamHealth } from './upstream/health.js';
import type { VectorRoute } from './vector/vector-route.js';

export interface PipelineDeps {
  store: Store;
  metrics: Metrics;
  logger: Logger;
  quirks: UpstreamQuirks;
  /** The tenant-scoped Qdrant route, when `vector` is configured. */
  vector(): VectorRoute | undefined;
  health: UpstreamHealth;
}

export function createPipeline(deps: PipelineDeps): readonly Stage[] {
  return [
    createRecordMetricsStage(deps),
    createParseRequestStage(),
    createIdentifyTenantStage(),
    createCheckEndpointStage(deps),
    createApplyPlanStage(),
    createRouteUpstreamStage(deps),
    // Before check-rate-limit, not after: response-end hooks run only for stages the request
    // reached, and a client that hangs up while its admission is in the store stops the
    // request at check-rate-limit. Placed after it, the settle never ran and the heartbeat
    // kept that request's slot and reservation alive for as long as the proxy ran.
    createDebitQuotaStage(deps),
    createCheckRateLimitStage(deps),
    createRouteVectorStage(deps),
    createInjectIdentityStage(),
    createTranslateResponseStage(),
    // Below translate-response: a translated error is built from the redacted bytes.
    createRedactUpstreamSecretsStage(),
    createHideInjectedUsageStage(deps),
    createMeterUsageStage(deps),
    createEnforceMidStreamStage(),
  ];
}
