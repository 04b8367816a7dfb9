/**
 * Header spellings that some servers read as the name the proxy injects or strips: CGI,
 * WSGI and Rack fold `-` and `_` together (both become HTTP_X_TENANT_ID), so a client's
 * `x_tenant_id: victim` would override the proxy's `x-tenant-id` on such a backend. Sent on
 * a raw socket, since HTTP clients normalise names; the fake upstream records what arrives.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    reply: () => ({
      kind: 'json',
      body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
    }),
    config: (base) => ({
      ...base,
      upstream: { ...(base.upstream as object), headers: { 'x-api-key': 'operator-secret' } },
    }),
  });
});
afterAll(() => h.close());

/** Sends a request with header lines exactly as written; resolves with the status line. */
function raw(headerLines: string[]): Promise<string> {
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] });
  const { hostname, port } = new URL(h.proxy.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(got.slice(0, got.indexOf('\r\n')));
      }
    });
    socket.on('error', reject);
    socket.write(
      [
        'POST /v1/chat/completions HTTP/1.1',
        'Host: proxy.test',
        `Authorization: Bearer ${KEYS.free}`,
        'Content-Type: application/json',
        `Content-Length: ${Buffer.byteLength(body)}`,
        ...headerLines,
        '',
        body,
      ].join('\r\n'),
    );
  });
}

describe('header names that fold onto injected ones', () => {
  it.each([
    ['x_tenant_id: globex'],
    ['X_Tenant_Id: globex'],
    ['x-tenant_id: globex'],
    ['x_tenant-id: globex'],
    ['x_tenant_plan: enterprise'],
    ['x_api_key: tenant-chosen-key'],
    ['x_forwarded_for: 10.0.0.1'],
    ['x_lanekeeper_request_id: forged'],
    ['content_length: 1'],
    ['transfer_encoding: chunked'],
  ])('strips "%s" before the upstream sees it', async (line) => {
    const before = h.upstream.received.length;
    expect(await raw([line])).toBe('HTTP/1.1 200 OK');
    expect(h.upstream.received.length).toBe(before + 1);
    const headers = h.lastReceived().headers;
    const name = line.slice(0, line.indexOf(':')).toLowerCase();
    expect(headers[name]).toBeUndefined();
    // Every remaining name, folded the way CGI does, names exactly one header.
    const folded = Object.keys(headers).map((n) => n.replaceAll('-', '_'));
    expect(new Set(folded).size).toBe(folded.length);
    expect(headers['x-tenant-id']).toBe('acme');
    expect(headers['x-tenant-plan']).toBe('free');
    expect(headers['x-api-key']).toBe('operator-secret');
  });

  it('passes other client headers with underscores through unchanged', async () => {
    expect(await raw(['x_app_trace: 42', 'x-app-user: u1'])).toBe('HTTP/1.1 200 OK');
    expect(h.lastReceived().headers.x_app_trace).toBe('42');
    expect(h.lastReceived().headers['x-app-user']).toBe('u1');
  });
});

describe('a tenant header the operator no longer injects', () => {
  let renamed: Harness;
  beforeAll(async () => {
    renamed = await startHarness({
      reply: () => ({
        kind: 'json',
        body: chatCompletion('small-model', 'ok', {
          prompt_tokens: 1,
          completion_tokens: 1,
          total_tokens: 2,
        }),
      }),
      config: (base) => ({
        ...base,
        identity: { sources: ['api_key'], inject_headers: { tenant: 'x-lk-tenant', plan: 'x-lk-plan' } },
      }),
    });
  });
  afterAll(() => renamed.close());

  it('never reaches the upstream beside the injected one, nor does a key in the query in any case', async () => {
    const res = await fetch(`${renamed.proxy.url}/v1/chat/completions?KEY=${KEYS.free}&Key=k2&key=k3&x=1`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${KEYS.free}`,
        'content-type': 'application/json',
        'x-tenant-id': 'globex',
        'x-tenant-plan': 'enterprise',
      },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.text();
    expect(res.status).toBe(200);
    const got = renamed.lastReceived();
    expect(got.headers['x-lk-tenant']).toBe('acme');
    expect(got.headers['x-lk-plan']).toBe('free');
    expect(got.headers['x-tenant-id']).toBeUndefined();
    expect(got.headers['x-tenant-plan']).toBeUndefined();
    expect(got.query).toBe('x=1');
    expect(got.raw).not.toContain(KEYS.free);
  });
});
