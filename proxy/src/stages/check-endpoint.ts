/**
 * Default-deny for upstream endpoints. The upstream credential is the operator's and
 * account-wide, so only what a dialect meters (chat, completions, responses, embeddings,
 * messages, generateContent, Ollama's chat/generate/embed, custom dialects' routes) is
 * forwarded, plus what `allow_paths` opens (per upstream, per plan). Everything else, such
 * as /v1/files, stored chat completions, /v1/responses/{id}, /v1/batches,
 * /v1/organization/*, Ollama's /api/delete|pull|push|copy|create, gets 403
 * endpoint_not_allowed, and a method no endpoint uses (TRACE, CONNECT, ...) 405, before the
 * upstream sees anything. `GET /v1/models` is answered here from the tenant's plan instead
 * of the account's full list. `"store": true` needs the plan feature `store`: a stored
 * object is readable with the account's credential, not the tenant's.
 */
import { KNOWN_METHODS, allowingEntry, planModelIds } from '@lanekeeper/contract';
import { passThroughUpstream } from '../runtime.js';
import type { RequestContext } from '../context.js';
import {
  EndpointNotAllowedError,
  FeatureNotEnabledError,
  InvalidRequestError,
  MethodNotAllowedError,
} from '../errors.js';
import { CONTINUE, reply, type RequestVerdict, type Stage } from '../stage.js';
import type { VectorRoute } from '../vector/vector-route.js';

export const STORE_FEATURE = 'store';
const ALLOW = [...KNOWN_METHODS].join(', ');

function json(status: number, body: unknown): RequestVerdict {
  return {
    response: {
      status,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(body)),
    },
  };
}

/** The tenant's plan models, aliases and ids, as OpenAI's or Anthropic's model list. */
function modelsReply(ctx: RequestContext): RequestVerdict {
  const plan = ctx.tenant?.plan;
  if (!plan) return undefined;
  const ids = [...new Set([...Object.keys(plan.models), ...planModelIds(plan.models)])];
  const one = /^\/v1\/models\/(.+)$/.exec(ctx.request.path)?.[1];
  const anthropic = ctx.clientHeaders['anthropic-version'] !== undefined;
  const entry = (id: string) =>
    anthropic
      ? { type: 'model', id, display_name: id, created_at: '1970-01-01T00:00:00Z' }
      : { id, object: 'model', created: 0, owned_by: 'lanekeeper' };
  if (one !== undefined) {
    if (ids.includes(one)) return json(200, entry(one));
    const message = `The model "${one.slice(0, 100)}" is not available on the ${ctx.tenant?.planName} plan.`;
    return json(
      404,
      anthropic
        ? { type: 'error', error: { type: 'not_found_error', message } }
        : { error: { message, type: 'invalid_request_error', param: null, code: 'model_not_found' } },
    );
  }
  return json(
    200,
    anthropic
      ? { data: ids.map(entry), has_more: false, first_id: ids[0] ?? null, last_id: ids.at(-1) ?? null }
      : { object: 'list', data: ids.map(entry) },
  );
}

/**
 * A switch a body turns on: any value but absent, false or null. An upstream reads `1`,
 * `"true"` or `{}` as on too, so only those three are off.
 */
function switchedOn(value: unknown): boolean {
  return value !== undefined && value !== false && value !== null;
}

/** Applies the plan's `store` feature to a body that asks the upstream to keep it. */
function storeVerdict(ctx: RequestContext): RequestVerdict {
  const body = ctx.request.body;
  const plan = ctx.tenant?.plan;
  if (!body || !plan || plan.features.includes(STORE_FEATURE)) return CONTINUE;
  if (switchedOn(body.store)) {
    return reply(
      new FeatureNotEnabledError(
        `"store": true needs the "${STORE_FEATURE}" feature, which the ${ctx.tenant?.planName} plan does not include.`,
      ),
    );
  }
  // The Responses API stores by default: without the feature, nothing is kept upstream.
  if (ctx.route?.endpoint === 'responses' && body.store === undefined) {
    body.store = false;
    ctx.bodyChanged = true;
  }
  return CONTINUE;
}

/**
 * A background response (`background: true` on the Responses API) is answered at once with
 * a queued stub whose usage is null, and generates afterwards, read later by its id: the
 * meter saw only the stub (13 input, 25 output tokens booked for a 4,000-token run, found by
 * review) and the reservation went back. Refused until it can be metered.
 */
function backgroundVerdict(ctx: RequestContext): RequestVerdict {
  if (ctx.route?.endpoint !== 'responses' || !switchedOn(ctx.request.body?.background)) return CONTINUE;
  return reply(
    new InvalidRequestError(
      '"background" responses are not available here: their usage could not be metered. Send the request without it, or stream it.',
    ),
  );
}

/** The plan feature that lets a request ask the provider for a priced-up service tier. */
export const PRIORITY_TIER_FEATURE = 'priority_tier';
/** The plan feature that lets a request ask for output other than text (audio, images). */
export const MEDIA_OUTPUT_FEATURE = 'media_output';

/**
 * Service tiers billed at the price table's rates or below: `auto` and `default` (the
 * account's own), `flex` (cheaper, slower), and Anthropic's `standard_only`. `priority` and
 * `scale` are billed above them, while the proxy books the table's price (found by review).
 */
const TABLE_PRICED_TIERS = new Set(['auto', 'default', 'flex', 'standard_only']);

/** True when `modalities` names an output other than text (OpenAI `modalities`, Gemini `responseModalities`). */
function beyondText(modalities: unknown): boolean {
  return (
    modalities !== undefined &&
    modalities !== null &&
    (!Array.isArray(modalities) ||
      modalities.some((m) => typeof m !== 'string' || m.toLowerCase() !== 'text'))
  );
}

/** A Gemini generationConfig asking for speech or images. Google's JSON takes each field by its proto name too. */
function asksForMedia(generation: unknown): boolean {
  if (typeof generation !== 'object' || generation === null) return false;
  const config = generation as Record<string, unknown>;
  return (
    beyondText(config.responseModalities) ||
    beyondText(config.response_modalities) ||
    switchedOn(config.speechConfig) ||
    switchedOn(config.speech_config)
  );
}

/**
 * Options a tenant could set that the provider bills above the price table, which prices
 * text tokens only: a priority service tier, and audio or image output (OpenAI's audio
 * tokens cost several times text; Gemini bills generated images and speech apart). Each
 * needs its plan feature.
 */
function pricedExtrasVerdict(ctx: RequestContext): RequestVerdict {
  const body = ctx.request.body;
  const features = ctx.tenant?.plan.features;
  if (!body || !features) return CONTINUE;
  const tier = body.service_tier;
  if (
    tier !== undefined &&
    tier !== null &&
    !(typeof tier === 'string' && TABLE_PRICED_TIERS.has(tier)) &&
    !features.includes(PRIORITY_TIER_FEATURE)
  )
    return reply(
      new FeatureNotEnabledError(
        `"service_tier" other than auto, default or flex needs the "${PRIORITY_TIER_FEATURE}" feature, which the ${ctx.tenant?.planName} plan does not include.`,
      ),
    );
  const media =
    switchedOn(body.audio) ||
    beyondText(body.modalities) ||
    asksForMedia(body.generationConfig) ||
    asksForMedia(body.generation_config);
  if (media && !features.includes(MEDIA_OUTPUT_FEATURE))
    return reply(
      new FeatureNotEnabledError(
        `Output other than text ("modalities" or "responseModalities" beyond text, "audio", "speechConfig") needs the "${MEDIA_OUTPUT_FEATURE}" feature, which the ${ctx.tenant?.planName} plan does not include.`,
      ),
    );
  return CONTINUE;
}

export function createCheckEndpointStage(deps: { vector(): VectorRoute | undefined }): Stage {
  return {
    name: 'check-endpoint',
    onRequest(ctx) {
      const { method, path } = ctx.request;
      if (!KNOWN_METHODS.has(method)) {
        const error = new MethodNotAllowedError(`The ${method.slice(0, 32)} method is not served here.`);
        error.headers = { allow: ALLOW };
        return reply(error);
      }
      if (deps.vector()?.matches(path)) return CONTINUE;
      if (ctx.route?.metered) return backgroundVerdict(ctx) ?? pricedExtrasVerdict(ctx) ?? storeVerdict(ctx);
      const plan = ctx.tenant?.plan;
      const entry =
        allowingEntry(passThroughUpstream(ctx.runtime, ctx.dialect).config.allow_paths, method, path) ??
        (plan && allowingEntry(plan.allow_paths, method, path));
      if (entry) {
        ctx.allowedBy = entry.path;
        return storeVerdict(ctx);
      }
      if (ctx.route?.endpoint === 'models' && (method === 'GET' || method === 'HEAD'))
        return modelsReply(ctx);
      return reply(
        new EndpointNotAllowedError(
          `${method} ${path.slice(0, 200)} is not an endpoint this service forwards. Ask the operator to add it to allow_paths if the ${ctx.tenant?.planName ?? 'tenant'} plan needs it.`,
        ),
      );
    },
  };
}
