/**
 * The admin client's own refusals, before anything is sent, and its deadline: a whole answer
 * within a fixed time, however slowly a control plane trickles it.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClientFromEnv, apiPath } from './client.js';
import { CliUsageError, ControlPlaneUnreachableError } from './errors.js';

describe('apiPath', () => {
  it.each(['.', '..', ''])('refuses %j, which no URL keeps as a segment', (id) => {
    expect(() => apiPath`/v1/tenants/${'acme'}/keys/${id}`).toThrow(CliUsageError);
  });

  it('encodes anything else as one segment', () => {
    expect(apiPath`/v1/tenants/${'...'}/keys/${'a/b'}`).toBe('/v1/tenants/.../keys/a%2Fb');
  });
});

describe('a control plane that trickles its answer', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    // A head at once, then a byte every 100 ms, for ever: no idle timer ever fires.
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const drip = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(drip));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is given up at the deadline, saying so', async () => {
    const deadlines = { GET: 600, POST: 600, PUT: 600, PATCH: 600, DELETE: 600 };
    const client = adminClientFromEnv(
      { LANEKEEPER_CONTROL_PLANE_URL: url, LANEKEEPER_ADMIN_TOKEN: 'a'.repeat(32) },
      deadlines,
    );
    const started = Date.now();
    const error = await client.call('GET', '/v1/tenants').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ControlPlaneUnreachableError);
    expect((error as Error).message).toContain('within 0.6 s');
    expect((error as Error).message).not.toContain('a'.repeat(32));
    // Well before the trickle would have ended (never): the deadline, not an idle timer.
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
