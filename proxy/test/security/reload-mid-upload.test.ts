/**
 * A reload that lands while a client is still sending its body: the attacker holding a key
 * about to be revoked (or a tenant about to be suspended, or downgraded) opens requests,
 * sends their headers and half a body, and finishes them after the operator acted. Each
 * must be judged by the config in force once its body is in, as a new request would be.
 */
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/identity/credentials.js';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { baseConfig, KEYS, startHarness, type Harness } from '../helpers/harness.js';

const USAGE = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
const CHAT = { messages: [{ role: 'user', content: 'hi' }] };

let h: Harness;
afterEach(async () => {
  await h?.close();
});

/** Config edits the operator makes to globex (plan pro, key KEYS.pro) while the upload is half done. */
type Edit = (tenant: Record<string, unknown>) => Record<string, unknown>;

/**
 * Sends a chat request with globex's key whose body stops halfway; once the proxy has the
 * headers, the config is reloaded with `edit` applied to globex, then the rest is sent.
 */
async function uploadAcrossReload(edit: Edit, model = 'smart'): Promise<{ status: number; body: string }> {
  const BODY = JSON.stringify({ model, ...CHAT });
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  async function* body() {
    yield BODY.slice(0, 10);
    await held;
    yield BODY.slice(10);
  }
  const sent = request(`${h.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
    body: Readable.from(body()),
  });
  // The proxy has taken the request (and its runtime) once the first bytes are in.
  await new Promise((r) => setTimeout(r, 200));
  const config = baseConfig(h.upstream.url) as { tenants: Record<string, unknown>[] };
  config.tenants = config.tenants.map((t) => (t.id === 'globex' ? edit(t) : t));
  await h.proxy.reload(config);
  release();
  const res = await sent;
  return { status: res.statusCode, body: await res.body.text() };
}

describe('a reload while a body is still arriving', () => {
  it('refuses a key revoked meanwhile (401), and nothing reaches the upstream', async () => {
    h = await startHarness({ reply: { kind: 'json', body: chatCompletion('big-model', 'ok', USAGE) } });
    const r = await uploadAcrossReload((t) => ({
      ...t,
      api_key_sha256: [sha256Hex('lk_test_new_key_0123456789')],
    }));
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body).error.code).toBe('invalid_api_key');
    expect(h.upstream.received).toHaveLength(0);
  });

  it('refuses a tenant suspended meanwhile (403)', async () => {
    h = await startHarness({ reply: { kind: 'json', body: chatCompletion('big-model', 'ok', USAGE) } });
    const r = await uploadAcrossReload((t) => ({ ...t, status: 'suspended' }));
    expect(r.status).toBe(403);
    expect(r.body).toContain('tenant_inactive');
    expect(h.upstream.received).toHaveLength(0);
  });

  it('applies the plan the tenant was moved to meanwhile', async () => {
    h = await startHarness({ reply: { kind: 'json', body: chatCompletion('small-model', 'ok', USAGE) } });
    // `smart` is pro's alone: asked for now, it is refused by the plan the tenant is on.
    const refused = await uploadAcrossReload((t) => ({ ...t, plan: 'free' }));
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('smart');
    expect(h.upstream.received).toHaveLength(0);

    const r = await uploadAcrossReload((t) => ({ ...t, plan: 'free' }), 'small-model');
    expect(r.status).toBe(200);
    // The free plan's system prompt (pro has none).
    const sent = h.lastReceived().body as { model: string; messages: { role: string; content: string }[] };
    expect(sent.model).toBe('small-model');
    expect(sent.messages[0]).toEqual({ role: 'system', content: 'You are the ACME free-tier assistant.' });
    expect(h.lastReceived().headers['x-tenant-plan']).toBe('free');
  });
});
