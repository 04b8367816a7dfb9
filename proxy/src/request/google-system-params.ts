/**
 * Google's system parameters that shape an answer so metering cannot read it: response field
 * masks (the `X-Goog-FieldMask` header, or `fields` with or without `$`), which can leave
 * usageMetadata (or usage) out, and an `alt` other than json or sse (`proto` makes the answer
 * binary). They apply on the Gemini dialect's routes and on every metered route of the
 * others: Gemini's OpenAI-compatible path (/v1beta/openai/…) is served by the same Google
 * front end but reached through the OpenAI dialect, and no other API reads these names.
 */
import type { RequestContext } from '../context.js';

export const FIELD_MASK_HEADER = 'x-goog-fieldmask';
export const FIELD_MASK_PARAMS = ['fields', '$fields'] as const;

/** Whether Google's system parameters could shape this request's answer. */
export function googleParamsApply(ctx: RequestContext): boolean {
  return ctx.dialect?.name === 'gemini' || ctx.route?.metered === true;
}

/** The first `alt` (or `$alt`) metering cannot read: json and sse are the answers it reads. */
export function unreadableAlt(query: string): string | undefined {
  if (query === '') return undefined;
  const params = new URLSearchParams(query);
  return [...params.getAll('alt'), ...params.getAll('$alt')].find((v) => v !== 'json' && v !== 'sse');
}
