/**
 * Applies the tenant's plan to the request before anything is forwarded: resolves the model
 * (alias -> upstream id, plan ids pass, a missing model becomes the default, anything else
 * is refused), gates image input on the `image_analysis` feature, injects the plan's system
 * prompt in the dialect's own place, and bounds prompt plus completion by `max_context`.
 */
import { ContextLengthExceededError, FeatureNotEnabledError, ModelNotAllowedError } from '../errors.js';
import { CONTINUE, reply, type Stage } from '../stage.js';

export const IMAGE_FEATURE = 'image_analysis';

/** The upstream model id for what the client asked, or undefined when the plan does not allow it. */
export function resolveModel(
  models: Readonly<Record<string, string>>,
  requested: string | undefined,
): string | undefined {
  if (requested === undefined || requested === '') return models.default;
  if (Object.hasOwn(models, requested)) return models[requested];
  return Object.values(models).includes(requested) ? requested : undefined;
}

export function createApplyPlanStage(): Stage {
  return {
    name: 'apply-plan',
    onRequest(ctx) {
      const { dialect, route, tenant, request } = ctx;
      if (!dialect || !route || !tenant || !request.body) return CONTINUE;
      const plan = tenant.plan;

      ctx.modelRequested = dialect.readModel(request, route);
      const model = resolveModel(plan.models, ctx.modelRequested);
      if (model === undefined) {
        const allowed = [...new Set([...Object.keys(plan.models), ...Object.values(plan.models)])].join(', ');
        return reply(
          new ModelNotAllowedError(
            `The model "${ctx.modelRequested}" is not available on the ${tenant.planName} plan. Available: ${allowed}.`,
          ),
        );
      }
      ctx.model = model;
      ctx.price = ctx.runtime.config.pricing[model];
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

      const system = plan.custom_prompts.system;
      if (system) {
        dialect.injectSystemPrompt(request, route, system);
        ctx.bodyChanged = true;
      }

      ctx.estimatedPromptTokens = dialect.estimatePromptTokens(request, route);
      const requestedOutput = dialect.readMaxOutput(request, route);
      ctx.maxOutputTokens = requestedOutput;
      ctx.clientCappedOutput = requestedOutput !== undefined;
      const limit = plan.max_context;
      if (limit !== undefined) {
        const remaining = limit - ctx.estimatedPromptTokens;
        if (remaining < 1) {
          return reply(
            new ContextLengthExceededError(
              `The prompt is about ${ctx.estimatedPromptTokens} tokens, over the ${limit}-token context of the ${tenant.planName} plan. Shorten it.`,
            ),
          );
        }
        if (route.generates !== false && (requestedOutput === undefined || requestedOutput > remaining)) {
          dialect.setMaxOutput(request, route, remaining);
          ctx.maxOutputTokens = remaining;
          ctx.bodyChanged = true;
        }
      }
      return CONTINUE;
    },
  };
}
