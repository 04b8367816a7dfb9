/** Raw HTTP calls against a running control plane (undici), returning status, headers and parsed JSON. */
import { Agent, request } from 'undici';

const agents = new Map<string, Agent>();

/**
 * A connection pool whose sockets leave from `address`: any 127.x.y.z reaches a control plane
 * on 127.0.0.1 and counts as its own client for the wrong-token throttle. Kept for the file's run.
 */
export function fromAddress(address: string): Agent {
  let agent = agents.get(address);
  if (!agent) agents.set(address, (agent = new Agent({ localAddress: address })));
  return agent;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Calls `method path` with an optional JSON body and bearer token. */
export async function call(
  base: string,
  method: string,
  path: string,
  opts: {
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
    rawBody?: string;
    /** The client address to send from (see fromAddress). */
    from?: string;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined || opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = opts.rawBody ?? JSON.stringify(opts.body);
  }
  const res = await request(`${base}${path}`, {
    method: method as 'GET',
    headers,
    body,
    ...(opts.from ? { dispatcher: fromAddress(opts.from) } : {}),
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (metrics): keep the text
  }
  return { status: res.statusCode, headers: res.headers, body: parsed };
}
