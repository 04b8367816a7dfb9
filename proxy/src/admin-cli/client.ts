/**
 * The admin API over HTTP, configured by LANEKEEPER_CONTROL_PLANE_URL and
 * LANEKEEPER_ADMIN_TOKEN. The CLI shares no code with the control plane (only the API), so
 * this is a plain undici client: JSON in, JSON out, the error body kept verbatim. Redirects
 * are not followed, so the admin token is never sent to another address.
 */
import { request } from 'undici';
import { AdminApiError, CliUsageError, ControlPlaneUnreachableError } from './errors.js';

export const URL_VARIABLE = 'LANEKEEPER_CONTROL_PLANE_URL';
export const TOKEN_VARIABLE = 'LANEKEEPER_ADMIN_TOKEN';

/**
 * The most a command waits for its whole answer: long enough for an erasure (a DELETE), which
 * waits for proxies to drop the tenant before it deletes; the rest answer in well under a
 * second. An overall deadline, not an idle timer: a control plane sending a byte every 30 s
 * held the CLI for ever.
 */
const DEADLINE_MS: Readonly<Record<Method, number>> = {
  // A month of a busy tenant's usage by model is read from the ledger's rows.
  GET: 120_000,
  POST: 30_000,
  PUT: 30_000,
  PATCH: 30_000,
  DELETE: 120_000,
};

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The admin API. Statuses of 300 and above reject (AdminApiError carries the body as sent). */
export interface AdminClient {
  /** The status and parsed JSON body (undefined for 204). */
  send(method: Method, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** The parsed JSON body alone. */
  call(method: Method, path: string, body?: unknown): Promise<unknown>;
}

/**
 * A path with each interpolated value percent-encoded as one segment, so a tenant id such
 * as `../plans` or `a/b` reaches the API as that id (and is refused there), never as a route.
 * `.`, `..` and the empty string are no segment a URL keeps (encoded or not, they are
 * dot-segments or vanish): `keys revoke --tenant X ..` went out as DELETE /v1/tenants/X/,
 * the tenant's erasure route but for its trailing slash. They are refused here.
 */
export function apiPath(strings: TemplateStringsArray, ...values: string[]): string {
  for (const value of values)
    if (value === '' || value === '.' || value === '..')
      throw new CliUsageError(`${JSON.stringify(value)} is not an id`);
  return strings.reduce(
    (out, part, i) => out + part + (i < values.length ? encodeURIComponent(values[i]!) : ''),
    '',
  );
}

function baseUrl(raw: string | undefined): URL {
  if (raw === undefined || raw.trim() === '')
    throw new CliUsageError(
      `${URL_VARIABLE} is not set: export ${URL_VARIABLE}=http://control-plane:8081 (the control plane's address)`,
    );
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new CliUsageError(`${URL_VARIABLE} is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CliUsageError(`${URL_VARIABLE} must be an http:// or https:// URL, not ${JSON.stringify(raw)}`);
  if (url.search || url.hash)
    throw new CliUsageError(`${URL_VARIABLE} must not carry a query or fragment: ${JSON.stringify(raw)}`);
  return url;
}

function adminToken(raw: string | undefined): string {
  if (raw === undefined || raw === '')
    throw new CliUsageError(`${TOKEN_VARIABLE} is not set: export the control plane's admin token`);
  // A bearer token is one run of visible characters; a newline would end the header early.
  if (!/^[\x21-\x7e]+$/.test(raw))
    throw new CliUsageError(
      `${TOKEN_VARIABLE} contains spaces, control characters or non-ASCII (a trailing newline from a file?)`,
    );
  return raw;
}

/** A client for the control plane the environment names; CliUsageError when it names none. */
export function adminClientFromEnv(
  env: NodeJS.ProcessEnv,
  deadlines: Readonly<Record<Method, number>> = DEADLINE_MS,
): AdminClient {
  const base = baseUrl(env[URL_VARIABLE]);
  const token = adminToken(env[TOKEN_VARIABLE]);
  const prefix = base.pathname.replace(/\/+$/, '');
  const client: AdminClient = {
    call: async (method, path, body) => (await client.send(method, path, body)).body,
    async send(method, path, body) {
      const url = new URL(base);
      url.pathname = `${prefix}${path.split('?')[0]}`;
      url.search = path.includes('?') ? path.slice(path.indexOf('?')) : '';
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        'x-lanekeeper-actor': 'cli',
      };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const deadline = deadlines[method];
      const signal = AbortSignal.timeout(deadline);
      const failed = (error: unknown) => {
        const { code, message } = error as { code?: string; message: string };
        return new ControlPlaneUnreachableError(
          signal.aborted
            ? `no whole answer from the control plane at ${base.origin}${prefix} (${URL_VARIABLE}) within ${deadline / 1000} s`
            : `cannot reach the control plane at ${base.origin}${prefix} (${URL_VARIABLE}): ${code ? `${code}: ` : ''}${message}`,
        );
      };
      let response;
      let text: string;
      try {
        response = await request(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
        text = await response.body.text();
      } catch (error) {
        throw failed(error);
      }
      if (response.statusCode >= 400) throw new AdminApiError(response.statusCode, text);
      if (response.statusCode >= 300)
        throw new ControlPlaneUnreachableError(
          `the control plane answered ${method} ${path} with a redirect (HTTP ${response.statusCode} to ${String(response.headers.location)}), not followed: check ${URL_VARIABLE}`,
        );
      if (response.statusCode === 204 || text === '') return { status: response.statusCode, body: undefined };
      try {
        return { status: response.statusCode, body: JSON.parse(text) as unknown };
      } catch {
        throw new ControlPlaneUnreachableError(
          `${base.origin}${prefix} answered ${method} ${path} with something that is not JSON (${String(response.headers['content-type'] ?? 'no content-type')}): is ${URL_VARIABLE} the control plane?`,
        );
      }
    },
  };
  return client;
}
