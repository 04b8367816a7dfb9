/**
 * The floor: the thinnest reverse proxy Node can be. A node:http server pipes each request
 * to the upstream through a keep-alive http.Agent and pipes the answer back, headers as
 * they came (minus hop-by-hop ones), with no parsing, no identity, no limits, no metering.
 * Anything Lanekeeper does must be paid for out of the gap between this and the upstream.
 *
 * Run: `node --import tsx bench/floor-proxy.ts --port 0 --upstream http://127.0.0.1:PORT`;
 * prints `listening <port>`.
 */
import { Agent, createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function withoutHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
  return out;
}

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const upstream = new URL(option('--upstream', 'http://127.0.0.1:8090'));
const agent = new Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 });

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const outgoing = request(
    {
      agent,
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: withoutHopByHop(req.headers),
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, withoutHopByHop(answer.headers));
      answer.pipe(res);
    },
  );
  outgoing.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(outgoing);
});

server.listen(Number(option('--port', '0')), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
