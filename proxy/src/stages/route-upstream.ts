/**
 * Picks the upstream that serves the request, after the plan has rewritten the model: the
 * first upstream whose `models` match the upstream model id. An alias's fallback list
 * becomes the order the exchange tries them in. When the upstream speaks another API than
 * the client, the request goes through a translator; a request that cannot be translated
 * (embeddings to Anthropic, say) is refused here with 400 in the client's dialect, before
 * any limit counts it and before any upstream is called. A request without a model goes
 * to the first upstream that speaks the client's dialect.
 */
import type { RequestContext } from '../context.js';
import { InvalidRequestError } from '../errors.js';
import { passThroughUpstream, type Upstream } from '../runtime.js';
import { CONTINUE, reply, type Stage } from '../stage.js';
import { translatorFor } from '../translate/index.js';
import { TranslationError, type Translator } from '../translate/translator.js';
import type { UpstreamHealth } from '../upstream/health.js';
import { priceOf } from '../usage/cost.js';

/** One way to serve the request: a model on an upstream, through a translator or not. */
export interface Candidate {
  readonly model: string;
  readonly upstream: Upstream;
  readonly translator: Translator | undefined;
}

/** How the request reaches this upstream, or why it cannot. */
function candidateFor(ctx: RequestContext, model: string, upstream: Upstream): Candidate | { error: string } {
  const client = ctx.dialect;
  const speaks = upstream.dialect;
  if (!client || !ctx.route || !speaks || speaks.name === client.name || !ctx.runtime.config.multiUpstream)
    return { model, upstream, translator: undefined };
  const translator = translatorFor(client.name, speaks.name);
  if (!translator)
    return {
      error: `The model "${model}" is served by an upstream that speaks the ${speaks.name} API, and ${client.name} requests cannot be translated to it.`,
    };
  try {
    translator.request(ctx.route.endpoint, ctx.request.body ?? {}, { model });
  } catch (error) {
    if (error instanceof TranslationError) return { error: error.message };
    throw error;
  }
  return { model, upstream, translator };
}

/** Makes the candidate the one the request is sent to. */
export function useCandidate(ctx: RequestContext, candidate: Candidate): void {
  ctx.upstream = candidate.upstream;
  ctx.translator = candidate.translator;
  ctx.upstreamDialect = candidate.translator ? candidate.upstream.dialect : ctx.dialect;
  if (ctx.model !== candidate.model) {
    ctx.model = candidate.model;
    ctx.price = priceOf(ctx.runtime.config.pricing, candidate.model);
    if (!candidate.translator && ctx.dialect && ctx.route && ctx.request.body) {
      ctx.dialect.rewriteModel(ctx.request, ctx.route, candidate.model);
      ctx.bodyChanged = true;
    }
  }
}

const candidatesOf = new WeakMap<RequestContext, readonly Candidate[]>();

/** The candidates left after the current one, in order (fallbacks). */
export function remainingCandidates(ctx: RequestContext): readonly Candidate[] {
  const all = candidatesOf.get(ctx) ?? [];
  const at = all.findIndex((c) => c.model === ctx.model && c.upstream === ctx.upstream);
  return at === -1 ? [] : all.slice(at + 1);
}

export function createRouteUpstreamStage(deps: { health: UpstreamHealth }): Stage {
  return {
    name: 'route-upstream',
    onRequest(ctx) {
      const { runtime } = ctx;
      if (ctx.model === undefined) {
        ctx.upstream = passThroughUpstream(runtime, ctx.dialect);
        ctx.upstreamDialect = ctx.dialect;
        return CONTINUE;
      }
      if (!runtime.config.multiUpstream && ctx.modelFallbacks.length === 0) {
        // One upstream and one model: nothing to choose, translate or fall back to.
        ctx.upstream = runtime.upstreams[0];
        ctx.upstreamDialect = ctx.dialect;
        return CONTINUE;
      }
      const candidates: Candidate[] = [];
      let refusal: string | undefined;
      // Each model once: the config refuses a model twice in a list, but were one to come
      // through, remainingCandidates (which finds the current one by its model) would fall
      // back from it to itself until the client left.
      for (const model of new Set([ctx.model, ...ctx.modelFallbacks])) {
        const upstream = runtime.upstreamFor(model);
        if (!upstream) {
          refusal ??= `No upstream serves the model "${model}".`;
          continue;
        }
        const candidate = candidateFor(ctx, model, upstream);
        if ('error' in candidate) refusal ??= candidate.error;
        else candidates.push(candidate);
      }
      if (candidates.length === 0)
        return reply(new InvalidRequestError(refusal ?? 'No upstream serves this request.'));
      // Ejected upstreams are skipped while another candidate can serve; when every one is
      // ejected the first is tried anyway (Envoy's panic mode): an answer beats a refusal.
      const live = candidates.filter((c) => deps.health.available(c.upstream));
      const order = live.length > 0 ? live : candidates;
      candidatesOf.set(ctx, order);
      useCandidate(ctx, order[0] as Candidate);
      return CONTINUE;
    },
  };
}
