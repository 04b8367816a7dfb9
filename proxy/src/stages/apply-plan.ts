/**
 * Applies the tenant's plan to the request before anything is forwarded: resolves the model
 * (alias -> upstream id, plan ids pass, a missing model becomes the default, anything else
 * is refused), gates image input on the `image_analysis` feature, injects the plan's system
 * prompt in the dialect's own place, and sets the request's one output cap (see capOutput),
 * bounded by `max_output_tokens` and by `max_context` less the prompt.
 */
import { modelChain, planModelIds, type ModelTarget } from '@lanekeeper/contract';
import type { PlanConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import type { Choices } from '../dialects/cap-fields.js';
import type { DialectRoute } from '../dialects/dialect.js';
import {
  ContextLengthExceededError,
  FeatureNotEnabledError,
  InvalidRequestError,
  ModelNotAllowedError,
  ProxyError,
} from '../errors.js';
import { CONTINUE, reply, type Stage } from '../stage.js';
import { reservesWorstCase } from '../store/admission.js';
import { priceOf } from '../usage/cost.js';

export const IMAGE_FEATURE = 'image_analysis';
const NO_FALLBACKS: readonly string[] = Object.freeze([]);
/** Lets token-id prompts, Ollama raw/template and Gemini cachedContent through (they skip the plan's system prompt). */
export const RAW_PROMPT_FEATURE = 'raw_prompt';

/**
 * The upstream model ids to try for what the client asked, in order (an alias may name a
 * fallback list), or undefined when the plan does not allow it. An exact id the plan names
 * is that id alone: a client that names an id gets that model or an error.
 */
export function resolveModel(
  models: Readonly<Record<string, ModelTarget>>,
  requested: string | undefined,
): readonly string[] | undefined {
  const alias = requested === undefined || requested === '' ? 'default' : requested;
  const target = Object.hasOwn(models, alias) ? models[alias] : undefined;
  if (target !== undefined) return modelChain(target);
  return requested !== undefined && planModelIds(models).includes(requested) ? [requested] : undefined;
}

/** True for a route whose answer is generated output, which gets a cap and reserves for it. */
export function producesOutput(route: DialectRoute): boolean {
  return route.metered && route.generates !== false;
}

/** The most choices a plan allows: its max_choices, else 1 when each choice costs reserved tokens. */
export function maxChoices(plan: PlanConfig): number {
  return plan.max_choices ?? (reservesWorstCase(plan.rate_limits) ? 1 : Number.POSITIVE_INFINITY);
}

/**
 * Sets the one output cap the request is sent with: the client's cap (the smallest of its
 * cap fields) or, without one, the plan's max_output_tokens; never above max_output_tokens
 * nor the context left after the prompt. The limits may lower it further at admission
 * (check-rate-limit), where the reservation is this cap times the number of choices.
 */
function capOutput(ctx: RequestContext, contextLeft: number): ProxyError | undefined {
  const { dialect, route, request, tenant } = ctx;
  if (!dialect || !route || !tenant) return undefined;
  const plan = tenant.plan;
  let requested: number | undefined;
  let choices: Choices | undefined;
  try {
    requested = dialect.readMaxOutput(request, route);
    choices = dialect.readChoices?.(request, route);
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  const allowed = maxChoices(plan);
  if (choices && choices.count > allowed) {
    return new InvalidRequestError(
      `"${choices.field}" asks for ${choices.count} completions; the ${tenant.planName} plan allows at most ${allowed} per request.`,
    );
  }
  const cap = Math.min(requested ?? plan.max_output_tokens, plan.max_output_tokens, contextLeft);
  dialect.setMaxOutput(request, route, cap);
  ctx.bodyChanged = true;
  ctx.maxOutputTokens = cap;
  ctx.outputChoices = choices?.count ?? 1;
  ctx.clientCappedOutput = requested !== undefined;
  return undefined;
}

export function createApplyPlanStage(): Stage {
  return {
    name: 'apply-plan',
    onRequest(ctx) {
      const { dialect, route, tenant, request } = ctx;
      if (!dialect || !route || !tenant || !request.body) return CONTINUE;
      const plan = tenant.plan;

      ctx.modelRequested = dialect.readModel(request, route);
      const chain = resolveModel(plan.models, ctx.modelRequested);
      const model = chain?.[0];
      if (chain === undefined || model === undefined) {
        const allowed = [...new Set([...Object.keys(plan.models), ...planModelIds(plan.models)])].join(', ');
        return reply(
          new ModelNotAllowedError(
            `The model "${ctx.modelRequested}" is not available on the ${tenant.planName} plan. Available: ${allowed}.`,
          ),
        );
      }
      ctx.model = model;
      ctx.modelFallbacks = chain.length > 1 ? chain.slice(1) : NO_FALLBACKS;
      ctx.price = priceOf(ctx.runtime.config.pricing, model);
      if (model !== ctx.modelRequested) {
        dialect.rewriteModel(request, route, model);
        ctx.bodyChanged = true;
      }

      if (!plan.features.includes(IMAGE_FEATURE) && dialect.hasImageInput(request, route)) {
        return reply(
          new FeatureNotEnabledError(
            `Image input needs the "${IMAGE_FEATURE}" feature, which the ${tenant.planName} plan does not include.`,
          ),
        );
      }

      const bypass = plan.features.includes(RAW_PROMPT_FEATURE)
        ? undefined
        : dialect.promptBypass?.(request, route);
      if (bypass !== undefined) {
        return reply(
          new FeatureNotEnabledError(
            `The "${bypass}" field sends a prompt the plan's instructions cannot be put in front of; it needs the "${RAW_PROMPT_FEATURE}" feature, which the ${tenant.planName} plan does not include.`,
          ),
        );
      }

      const system = plan.custom_prompts.system;
      if (system) {
        try {
          dialect.injectSystemPrompt(request, route, system);
        } catch (error) {
          if (error instanceof ProxyError) return reply(error);
          throw error;
        }
        ctx.bodyChanged = true;
      }

      ctx.estimatedPromptTokens = dialect.estimatePromptTokens(request, route);
      const limit = plan.max_context;
      const contextLeft = limit === undefined ? Number.POSITIVE_INFINITY : limit - ctx.estimatedPromptTokens;
      if (contextLeft < 1) {
        return reply(
          new ContextLengthExceededError(
            `The prompt is about ${ctx.estimatedPromptTokens} tokens, over the ${limit}-token context of the ${tenant.planName} plan. Shorten it.`,
          ),
        );
      }
      if (producesOutput(route)) {
        const refused = capOutput(ctx, contextLeft);
        if (refused) return reply(refused);
      }
      return CONTINUE;
    },
  };
}
