/**
 * Recognises the request's dialect and endpoint by path and parses its JSON body. A body
 * over max_body_bytes gets 413 and malformed JSON gets 400, both before the upstream is
 * called, and so do an empty body on a metered endpoint, nesting past max_json_depth,
 * duplicate keys and case variants of a control field (request/json-scan.ts), alone or in
 * pairs. A path no dialect recognises passes through as plain HTTP, unparsed.
 */
import { nestsDeeperThan } from '@lanekeeper/contract';
import { BodyTooLargeError, InvalidJsonError, InvalidRequestError } from '../errors.js';
import { selectDialect } from '../dialects/index.js';
import type { JsonBody } from '../dialects/dialect.js';
import { googleParamsApply, unreadableAlt } from '../request/google-system-params.js';
import { scanJson, type ScanProblem } from '../request/json-scan.js';
import type { RequestContext } from '../context.js';
import { CONTINUE, reply, type Stage } from '../stage.js';

/** Bodies from this long are scanned for depth before JSON.parse (a shorter one parses in a millisecond). */
const DEPTH_PRESCAN_CHARS = 4 * 1024;

function isJsonContent(type: string | undefined): boolean {
  return type === undefined || type === '' || /[/+]json\b/i.test(type);
}

function isBlank(body: Buffer): boolean {
  for (const byte of body) if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return false;
  return true;
}

function describe(problem: ScanProblem): string {
  switch (problem.kind) {
    case 'depth':
      return `The request body nests deeper than ${problem.limit} levels.`;
    case 'duplicate':
      return `The request body has the field "${problem.key.slice(0, 64)}" more than once; send it once.`;
    case 'case':
      return `The request body has both "${problem.other.slice(0, 64)}" and "${problem.key.slice(0, 64)}", which some servers read as one field; send one.`;
    case 'spelling':
      return `The request body has the field "${problem.key.slice(0, 64)}", which some servers read as "${problem.as.slice(0, 64)}"; spell it "${problem.as.slice(0, 64)}".`;
  }
}

/** The dialect and endpoint the path names: known before the body, so even a refusal of an unread body speaks the client's API. */
function recognise(ctx: RequestContext): void {
  const { runtime, request } = ctx;
  const selected = selectDialect(
    // Several upstreams: the client's API is known by its path, whatever each upstream speaks.
    runtime.config.multiUpstream ? 'auto' : runtime.config.upstream.dialect,
    request.method,
    request.path,
    runtime.customDialects,
  );
  ctx.dialect = selected?.dialect;
  ctx.route = selected?.route;
}

export function createParseRequestStage(): Stage {
  return {
    name: 'parse-request',
    onHeaders(ctx) {
      recognise(ctx);
      return CONTINUE;
    },
    onRequest(ctx) {
      const { runtime, request } = ctx;
      // A reload mid-upload may have changed the dialects.
      if (!ctx.judgedBeforeBody) recognise(ctx);
      if (ctx.bodyTooLarge) {
        const limit = runtime.config.max_body_bytes;
        return reply(
          new BodyTooLargeError(`The request body is larger than this service accepts (${limit} bytes).`),
        );
      }
      if (!ctx.dialect) return CONTINUE;
      if (ctx.rawBody.length === 0 || isBlank(ctx.rawBody)) {
        // A metered endpoint without a body would skip the plan (no model to check) and
        // reach the upstream as it is.
        if (ctx.route?.metered) return reply(new InvalidRequestError('This endpoint needs a JSON body.'));
        return CONTINUE;
      }
      const contentType = ctx.clientHeaders['content-type'];
      if (!isJsonContent(contentType)) {
        return reply(
          new InvalidRequestError(
            `Expected a JSON body (content-type application/json), got "${contentType}".`,
          ),
        );
      }
      const text = ctx.rawBody.toString('utf8');
      const maxDepth = runtime.config.max_json_depth;
      // Before parsing, which costs about half a microsecond a level: a body of `[[[[…` up
      // to max_body_bytes held the event loop for seconds, and this stage runs before the
      // client is identified. A short body parses fast however it nests.
      if (text.length >= DEPTH_PRESCAN_CHARS && nestsDeeperThan(text, maxDepth))
        return reply(new InvalidRequestError(describe({ kind: 'depth', limit: maxDepth })));
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        return reply(new InvalidJsonError(`The request body is not valid JSON: ${(error as Error).message}`));
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return reply(new InvalidRequestError('The request body must be a JSON object.'));
      }
      const problem = scanJson(text, maxDepth, ctx.dialect.lowercaseKeys === true);
      if (problem) return reply(new InvalidRequestError(describe(problem)));
      request.body = parsed as JsonBody;
      // Python servers (vLLM, pydantic) take "true" for true, while the proxy would read
      // the request as not streamed: unmetered usage, no stream_options asked for.
      const stream = request.body.stream;
      if (
        ctx.dialect.lowercaseKeys &&
        stream !== undefined &&
        stream !== null &&
        typeof stream !== 'boolean'
      ) {
        const shown = JSON.stringify(stream)?.slice(0, 40) ?? typeof stream;
        return reply(new InvalidRequestError(`"stream" must be true or false, not ${shown}.`));
      }
      const alt = googleParamsApply(ctx) ? unreadableAlt(request.query) : undefined;
      if (alt !== undefined) {
        return reply(
          new InvalidRequestError(`"alt" must be json or sse, not ${JSON.stringify(alt.slice(0, 40))}.`),
        );
      }
      ctx.stream = ctx.route ? ctx.dialect.isStream(request, ctx.route) : false;
      return CONTINUE;
    },
  };
}
