/**
 * Takes the operator's upstream credentials out of error answers before any client reads
 * them. Providers echo the key they were called with in some refusals: Google answers a
 * suspended or restricted key with a 403 whose message carries `api_key:AIza…` whole, and
 * every tenant behind the proxy would read the operator's key in it (or, translated, in an
 * OpenAI error's message). Only a 401 was replaced whole (upstream_auth_failed); other
 * error bodies are the upstream's own words, useful to the client, so they pass with each
 * configured secret replaced.
 *
 * It sits below translate-response, so a translated error is built from the redacted bytes.
 * Success answers are not scanned: no provider echoes a key in one, and scanning every
 * chunk of every stream would cost the hot path.
 */
import { perConfig } from '../config/derived.js';
import type { UpstreamConfig } from '../config/upstreams.js';
import type { RequestContext } from '../context.js';
import type { Stage } from '../stage.js';

/** What a secret becomes: JSON-safe, so a JSON error body stays JSON. */
export const REDACTED = '[redacted]';

/** Upstream header names that carry a credential rather than a version or a flag. */
const SECRET_HEADER = /auth|key|token|secret|password|credential|cookie/i;

/** Shorter values are not secrets worth the name, and would match ordinary words. */
const MIN_SECRET_LENGTH = 8;

const EMPTY = Buffer.alloc(0);

/**
 * The secrets an upstream is configured with: credential header values, and their token
 * after a scheme. (An upstream url carries none: the config refuses user info and queries.)
 */
function secretsOf(upstream: UpstreamConfig): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(upstream.headers)) {
    if (!SECRET_HEADER.test(name)) continue;
    found.push(value);
    // "Bearer sk-…", "Basic dXNl…": the provider may quote the token alone.
    const space = value.indexOf(' ');
    if (space > 0) found.push(value.slice(space + 1).trim());
  }
  return found;
}

/** Every upstream's secrets, longest first (a secret containing another is replaced whole). */
const secretsFor = perConfig((config): readonly string[] => {
  const all = new Set(
    Object.values(config.upstreams)
      .flatMap(secretsOf)
      .filter((secret) => secret.length >= MIN_SECRET_LENGTH),
  );
  return [...all].sort((a, b) => b.length - a.length);
});

interface Redaction {
  secrets: readonly string[];
  /** The end of what came so far, held back: a secret may be split across two chunks. */
  carry: string;
  /** Bytes held back: one less than the longest secret. */
  hold: number;
}

/** Replaces every secret in `text`; latin1 keeps each byte one char, so nothing else changes. */
function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED);
  return out;
}

export function createRedactUpstreamSecretsStage(): Stage {
  const redactions = new WeakMap<RequestContext, Redaction>();
  return {
    name: 'redact-upstream-secrets',
    onResponseHeaders(ctx, head) {
      if (head.status < 400 || ctx.outcome === 'local_reply' || ctx.errorCode) return;
      const secrets = secretsFor(ctx.runtime.config);
      if (secrets.length === 0) return;
      // The body's length may change.
      delete head.headers['content-length'];
      redactions.set(ctx, { secrets, carry: '', hold: secrets[0]!.length - 1 });
    },
    onResponseChunk(ctx, chunk, end) {
      const r = redactions.get(ctx);
      if (!r) return chunk;
      const text = redact(r.carry + chunk.toString('latin1'), r.secrets);
      if (end) {
        redactions.delete(ctx);
        return text === '' ? EMPTY : Buffer.from(text, 'latin1');
      }
      const cut = Math.max(0, text.length - r.hold);
      r.carry = text.slice(cut);
      return cut === 0 ? EMPTY : Buffer.from(text.slice(0, cut), 'latin1');
    },
  };
}
