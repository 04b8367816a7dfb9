/**
 * Enforces the tenant's limits before the upstream is called: one atomic `admit` on the
 * store checks requests/min, concurrency, tokens/hour and spend budgets, and reserves the
 * request's worst case: the prompt plus, for each choice, the output cap apply-plan set. A
 * client's own output cap must fit whole (else 429); a request without one has the plan's cap
 * lowered to what remains, so its worst case fits too. On the way back, the tenant's own
 * x-ratelimit-* headers replace the upstream's (those describe the provider account).
 */
import type { RequestContext } from '../context.js';
import type { Price } from '../config/schema.js';
import { BudgetExceededError, ProxyError, RateLimitedError, type LimitName } from '../errors.js';
import {
  RATELIMIT_LIMIT_REQUESTS,
  RATELIMIT_LIMIT_TOKENS,
  RATELIMIT_REMAINING_REQUESTS,
  RATELIMIT_REMAINING_TOKENS,
  RATELIMIT_RESET_REQUESTS,
  RATELIMIT_RESET_TOKENS,
  UPSTREAM_RATELIMIT_PREFIXES,
} from '../headers.js';
import type { Metrics } from '../metrics.js';
import { CONTINUE, reply, type Stage } from '../stage.js';
import { MAX_GRANTED_OUTPUT } from '../store/admission.js';
import type { LimitState, Store } from '../store/store.js';
import { priceOf } from '../usage/cost.js';
import { producesOutput } from './apply-plan.js';
import { remainingCandidates } from './route-upstream.js';

const PER_TOKEN = 1 / 1_000_000;

const LIMIT_MESSAGES: Record<LimitName, string> = {
  requests_per_minute: 'requests per minute',
  tokens_per_hour: 'tokens per hour',
  max_concurrent: 'concurrent requests',
  budget_usd_per_day: 'daily spend budget',
  budget_usd_per_month: 'monthly spend budget',
};

/** The x-ratelimit-* headers for a tenant's standing; reset values are Go-style durations as OpenAI sends them. */
export function limitHeaders(state: LimitState): Record<string, string> {
  const headers: Record<string, string> = {};
  if (state.requests) {
    headers[RATELIMIT_LIMIT_REQUESTS] = String(state.requests.limit);
    headers[RATELIMIT_REMAINING_REQUESTS] = String(Math.max(0, state.requests.remaining));
    headers[RATELIMIT_RESET_REQUESTS] = `${Math.max(0, Math.ceil(state.requests.resetS))}s`;
  }
  if (state.tokens) {
    headers[RATELIMIT_LIMIT_TOKENS] = String(state.tokens.limit);
    headers[RATELIMIT_REMAINING_TOKENS] = String(Math.max(0, Math.floor(state.tokens.remaining)));
    headers[RATELIMIT_RESET_TOKENS] = `${Math.max(0, Math.ceil(state.tokens.resetS))}s`;
  }
  return headers;
}

function refusal(limit: LimitName, retryAfterS: number, ctx: RequestContext): ProxyError {
  const what = LIMIT_MESSAGES[limit];
  const wait = Math.max(1, Math.ceil(retryAfterS));
  if (limit === 'budget_usd_per_day' || limit === 'budget_usd_per_month') {
    return new BudgetExceededError(
      limit,
      wait,
      `Tenant "${ctx.tenant?.id}" has used its ${what}. It resets in ${wait} s.`,
    );
  }
  return new RateLimitedError(
    limit,
    wait,
    `Rate limit reached for ${what} on tenant "${ctx.tenant?.id}". Retry after ${wait} s.`,
  );
}

/**
 * The dearest an input token may be billed at. A prompt the client marks for caching is
 * billed at cache_write (1.25 to 2 times input at Anthropic): reserved at input, two such
 * requests at once spent $0.032 of a $0.02 budget (found by review).
 */
function inputRate(price: Price): number {
  return Math.max(price.input, price.cache_write ?? 0);
}

/**
 * The price a request is reserved at: the dearest, input and output apart, of the model it
 * is sent to and the fallbacks that may serve it instead. Reserved at the first model's
 * alone, a request that fell back to a pricier one was settled at a cost its admission never
 * checked: with the first model overloaded, every request in flight overshot a spend budget
 * at once (twelve times a day's budget in the review's run).
 */
function dearestPrice(ctx: RequestContext): { input: number; output: number } {
  let input = ctx.price ? inputRate(ctx.price) : 0;
  let output = ctx.price?.output ?? 0;
  for (const candidate of remainingCandidates(ctx)) {
    const price = priceOf(ctx.runtime.config.pricing, candidate.model);
    if (!price) continue;
    input = Math.max(input, inputRate(price));
    output = Math.max(output, price.output);
  }
  return { input, output };
}

export function createCheckRateLimitStage(deps: { store: Store; metrics: Metrics }): Stage {
  return {
    name: 'check-rate-limit',
    span: 'lanekeeper.rate_limit',
    async onRequest(ctx) {
      const tenant = ctx.tenant;
      if (!tenant) return CONTINUE;
      const limits = tenant.plan.rate_limits;
      // Here, where limits are read, so the budget alert (lanekeeper_budget_usd) follows plan changes.
      deps.metrics.setBudgets(tenant.id, limits.budget_usd_per_day, limits.budget_usd_per_month);
      if (Object.keys(limits).length === 0) return CONTINUE;
      // The cap apply-plan set, times the completions the upstream generates with it.
      const perChoice = ctx.route && producesOutput(ctx.route) ? ctx.maxOutputTokens : undefined;
      const choices = ctx.outputChoices;
      const output = perChoice === undefined ? 0 : Math.min(perChoice * choices, MAX_GRANTED_OUTPUT);
      const price = dearestPrice(ctx);
      let result;
      try {
        result = await deps.store.admit({
          tenant: tenant.id,
          requestId: ctx.id,
          // The time of admission, not of the headers: a body uploaded for longer than
          // slot_ttl_ms made its slot and reservation expire as they were written, and the
          // next admission pruned them while the request ran (found by review).
          now: Date.now(),
          limits,
          promptTokens: ctx.estimatedPromptTokens,
          maxOutput: output,
          // A cap the client chose is its worst case: it fits whole or the request waits.
          // Without one, each choice needs at least a token.
          minOutput: perChoice === undefined ? undefined : ctx.clientCappedOutput ? output : choices,
          inputPrice: price.input * PER_TOKEN,
          outputPrice: price.output * PER_TOKEN,
          // Short, and kept alive while in flight (store/slot-heartbeat.ts).
          slotTtlMs: ctx.runtime.config.slot_ttl_ms,
        });
      } catch (error) {
        if (error instanceof ProxyError) return reply(error);
        throw error;
      }
      ctx.limitHeaders = limitHeaders(result.state);
      if (!result.ok) {
        deps.metrics.rateLimited.inc({ tenant: deps.metrics.tenantLabel(tenant.id), limit: result.limit });
        return reply(refusal(result.limit, result.retryAfterS, ctx));
      }
      ctx.reservation = result.reservation;
      const granted = result.grantedOutput;
      if (perChoice !== undefined && granted !== undefined && granted < output) {
        const lowered = Math.max(1, Math.floor(granted / choices));
        if (ctx.dialect && ctx.route && ctx.request.body) {
          ctx.dialect.setMaxOutput(ctx.request, ctx.route, lowered);
          ctx.bodyChanged = true;
        }
        ctx.maxOutputTokens = lowered;
      }
      return CONTINUE;
    },
    onResponseHeaders(ctx, head) {
      for (const name of Object.keys(head.headers)) {
        const lower = name.toLowerCase();
        if (UPSTREAM_RATELIMIT_PREFIXES.some((prefix) => lower.startsWith(prefix))) delete head.headers[name];
      }
      Object.assign(head.headers, ctx.limitHeaders);
    },
  };
}
