/**
 * Header names and values the config gives the proxy to send (an upstream's credential, the
 * tenant headers it injects, the control plane's token, Qdrant's key). undici refuses a bad
 * one on every request, so a key pasted with its file's trailing newline passed
 * `check-config` and then turned every request into a 502 "upstream could not be reached".
 * They are refused when the config is read instead, saying why.
 */
import { z } from 'zod';
import { HOP_BY_HOP_HEADERS } from '../headers.js';

/** RFC 9110 §5.6.2 token characters. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Names the proxy sets itself per request (the Host of the upstream, the body's length) or
 * that belong to one connection: a configured value would break the framing or be dropped.
 */
const RESERVED = new Set([...HOP_BY_HOP_HEADERS, 'host', 'content-length', 'expect']);

/** A header name the proxy may send: a token, not one it sets itself. */
export const headerNameSchema = z.string().superRefine((name, issue) => {
  if (!TOKEN.test(name))
    issue.addIssue({
      code: 'custom',
      message: `"${name}" is not a header name (letters, digits and !#$%&'*+-.^_\`|~ only, no spaces)`,
    });
  else if (RESERVED.has(name.toLowerCase()))
    issue.addIssue({
      code: 'custom',
      message: `"${name}" is set by the proxy for each request, not by the config`,
    });
});

/**
 * A header value: no line break or other control character (a tab aside), nothing past
 * U+00FF. Spaces at either end are let be: HTTP trims them, and `Bearer ${KEY:-}` for an
 * upstream without keys is one. The value itself is never echoed: it is usually a secret.
 */
export const headerValueSchema = z.string().superRefine((value, issue) => {
  if (/[\r\n]/.test(value))
    issue.addIssue({
      code: 'custom',
      message: 'a header value cannot hold a line break (a trailing newline from a secret file or variable?)',
    });
  else if (/[^\t\x20-\x7e\x80-\xff]/.test(value))
    issue.addIssue({
      code: 'custom',
      message: 'a header value holds a control character or a character past U+00FF',
    });
});
