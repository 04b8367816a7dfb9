/**
 * Recognises the request's dialect and endpoint by path and parses its JSON body. A body
 * over max_body_bytes gets 413 and malformed JSON gets 400, both before the upstream is
 * called. A path no dialect recognises passes through as plain HTTP, unparsed.
 */
import { BodyTooLargeError, InvalidJsonError, InvalidRequestError } from '../errors.js';
import { selectDialect } from '../dialects/index.js';
import type { JsonBody } from '../dialects/dialect.js';
import { CONTINUE, reply, type Stage } from '../stage.js';

function isJsonContent(type: string | undefined): boolean {
  return type === undefined || type === '' || /[/+]json\b/i.test(type);
}

export function createParseRequestStage(): Stage {
  return {
    name: 'parse-request',
    onRequest(ctx) {
      const { runtime, request } = ctx;
      const selected = selectDialect(
        runtime.config.upstream.dialect,
        request.method,
        request.path,
        runtime.customDialects,
      );
      if (selected) {
        ctx.dialect = selected.dialect;
        ctx.route = selected.route;
      }
      if (ctx.bodyTooLarge) {
        const limit = runtime.config.max_body_bytes;
        return reply(
          new BodyTooLargeError(`The request body is larger than this service accepts (${limit} bytes).`),
        );
      }
      if (!ctx.dialect || ctx.rawBody.length === 0) return CONTINUE;
      const contentType = ctx.clientHeaders['content-type'];
      if (!isJsonContent(contentType)) {
        return reply(
          new InvalidRequestError(
            `Expected a JSON body (content-type application/json), got "${contentType}".`,
          ),
        );
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(ctx.rawBody.toString('utf8'));
      } catch (error) {
        return reply(new InvalidJsonError(`The request body is not valid JSON: ${(error as Error).message}`));
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return reply(new InvalidRequestError('The request body must be a JSON object.'));
      }
      request.body = parsed as JsonBody;
      ctx.stream = ctx.route ? ctx.dialect.isStream(request, ctx.route) : false;
      return CONTINUE;
    },
  };
}
