/**
 * A reference point between the floor and Lanekeeper: the same node:http server, but the
 * upstream leg through an undici Pool (what Lanekeeper uses) instead of node:http's Agent,
 * with the request body read whole and re-serialised after a JSON.parse (what any proxy
 * that rewrites the model must do), and no other work. It shows what the HTTP machinery
 * alone costs on this machine, so Lanekeeper's own work can be told apart from it.
 *
 * Run: `node --import tsx bench/undici-passthrough.ts --port 0 --upstream http://127.0.0.1:PORT`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const upstream = new URL(option('--upstream', 'http://127.0.0.1:8090'));
const pool = new Pool(upstream.origin, { connections: 128, keepAliveTimeout: 30_000 });

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const body = raw.length > 0 ? Buffer.from(JSON.stringify(JSON.parse(raw.toString('utf8')))) : null;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    if (body) headers['content-length'] = String(body.length);
    pool.dispatch(
      { path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body },
      {
        onRequestStart() {},
        onResponseStart(_controller, status, rawHeaders) {
          const out: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(rawHeaders)) {
            if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
          }
          res.writeHead(status, out);
        },
        onResponseData(_controller, chunk) {
          res.write(chunk);
        },
        onResponseEnd() {
          res.end();
        },
        onResponseError(_controller, error) {
          if (!res.headersSent) res.writeHead(502);
          res.end(String(error.message));
        },
      },
    );
  });
});

server.listen(Number(option('--port', '0')), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
