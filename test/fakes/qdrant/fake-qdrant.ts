/**
 * A Qdrant-compatible TEST server (node:http on port 0) for CI, where no real Qdrant can run.
 * It covers only the REST endpoints Lanekeeper uses, with Qdrant's envelopes
 * (`{result, status:"ok", time}` / `{status:{error}, result:null, time}`), status codes and
 * filter semantics. The contract suite runs unchanged against it and against a real Qdrant,
 * which is what keeps it honest. It lives under test/ and is never shipped.
 *
 * Test-only extras a real Qdrant lacks: `failNext` injects a failure into the next matching
 * request (to test retries), and `requests` records what arrived (to test what a proxy sent).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeBadRequest } from './fake-qdrant-filter.js';
import { FakeConflict, FakeNotFound, FakeQdrantEngine } from './fake-qdrant-engine.js';

/** A request as the fake received it. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** Which requests an injected failure hits, and how. */
export interface InjectedFailure {
  method?: string;
  path: RegExp;
  /** HTTP status to answer with; 500 by default. */
  status?: number;
  /** How many matching requests fail; 1 by default. */
  times?: number;
}

/** A running fake Qdrant. */
export interface FakeQdrant {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Makes the next matching request(s) fail before they touch any data. */
  failNext(failure: InjectedFailure): void;
  close(): Promise<void>;
}

type Handler = (engine: FakeQdrantEngine, params: string[], body: unknown) => unknown;

const c = (s: string) => `/collections/([^/]+)${s}`;
/** Route table: method, path pattern (collection name is the first capture), handler. */
const ROUTES: [string, RegExp, Handler][] = [
  ['GET', /^\/collections$/, (e) => e.listCollections()],
  ['GET', /^\/aliases$/, (e) => e.listAliases()],
  ['POST', /^\/collections\/aliases$/, (e, _p, b) => e.updateAliases(b)],
  ['GET', new RegExp(`^${c('/aliases')}$`), (e, [n]) => e.listAliases(n)],
  ['GET', new RegExp(`^${c('/exists')}$`), (e, [n]) => e.exists(n!)],
  ['GET', new RegExp(`^${c('')}$`), (e, [n]) => e.collectionInfo(n!)],
  ['PUT', new RegExp(`^${c('')}$`), (e, [n], b) => e.createCollection(n!, b)],
  ['DELETE', new RegExp(`^${c('')}$`), (e, [n]) => e.deleteCollection(n!)],
  ['PUT', new RegExp(`^${c('/index')}$`), (e, [n], b) => e.createIndex(n!, b)],
  ['PUT', new RegExp(`^${c('/points')}$`), (e, [n], b) => e.upsert(n!, b)],
  ['POST', new RegExp(`^${c('/points')}$`), (e, [n], b) => e.retrieve(n!, b)],
  ['GET', new RegExp(`^${c('/points/([^/]+)')}$`), (e, [n, id]) => e.getPoint(n!, id!)],
  ['POST', new RegExp(`^${c('/points/delete')}$`), (e, [n], b) => e.deletePoints(n!, b)],
  ['PUT', new RegExp(`^${c('/points/vectors')}$`), (e, [n], b) => e.updateVectors(n!, b)],
  ['POST', new RegExp(`^${c('/points/vectors/delete')}$`), (e, [n]) => e.deleteVectors(n!)],
  ['POST', new RegExp(`^${c('/points/payload')}$`), (e, [n], b) => e.updatePayload(n!, b, 'set')],
  ['PUT', new RegExp(`^${c('/points/payload')}$`), (e, [n], b) => e.updatePayload(n!, b, 'overwrite')],
  ['POST', new RegExp(`^${c('/points/payload/delete')}$`), (e, [n], b) => e.updatePayload(n!, b, 'delete')],
  ['POST', new RegExp(`^${c('/points/payload/clear')}$`), (e, [n], b) => e.updatePayload(n!, b, 'clear')],
  ['POST', new RegExp(`^${c('/points/scroll')}$`), (e, [n], b) => e.scroll(n!, b)],
  ['POST', new RegExp(`^${c('/points/count')}$`), (e, [n], b) => e.count(n!, b)],
  ['POST', new RegExp(`^${c('/facet')}$`), (e, [n], b) => e.facet(n!, b)],
  ['POST', new RegExp(`^${c('/points/query')}$`), (e, [n], b) => e.query(n!, b)],
  ['POST', new RegExp(`^${c('/points/query/batch')}$`), (e, [n], b) => e.queryBatch(n!, b)],
  ['POST', new RegExp(`^${c('/points/search')}$`), (e, [n], b) => e.search(n!, b)],
  ['POST', new RegExp(`^${c('/points/search/batch')}$`), (e, [n], b) => e.searchBatch(n!, b)],
];

function send(res: ServerResponse, status: number, body: unknown, started: number): void {
  const time = (performance.now() - started) / 1000;
  const envelope =
    status < 400
      ? { result: body, status: 'ok', time }
      : { status: { error: String(body) }, time, result: null };
  const text = JSON.stringify(envelope);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a fake Qdrant on 127.0.0.1, port 0. With `apiKey`, requests must carry it like Qdrant's `api-key`. */
export async function startFakeQdrant(options: { apiKey?: string } = {}): Promise<FakeQdrant> {
  const engine = new FakeQdrantEngine();
  const requests: RecordedRequest[] = [];
  const failures: Required<InjectedFailure>[] = [];

  const server = createServer((req, res) => {
    const started = performance.now();
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      const text = await readBody(req);
      let body: unknown;
      try {
        body = text.length > 0 ? JSON.parse(text) : undefined;
      } catch (error) {
        send(res, 400, `Format error in JSON body: ${(error as Error).message}`, started);
        return;
      }
      requests.push({ method, path: url.pathname, query: url.searchParams, headers: req.headers, body });
      if (options.apiKey !== undefined) {
        const bearer = req.headers.authorization?.replace(/^Bearer /i, '');
        const presented = req.headers['api-key'] ?? bearer;
        if (presented === undefined) {
          res
            .writeHead(401, { 'content-type': 'text/plain' })
            .end('Must provide an API key or an Authorization bearer token');
          return;
        }
        if (presented !== options.apiKey) {
          send(res, 403, 'Forbidden: Invalid API key or JWT', started);
          return;
        }
      }
      const failure = failures.find(
        (f) => f.path.test(url.pathname) && (f.method === '' || f.method === method),
      );
      if (failure) {
        failure.times -= 1;
        if (failure.times <= 0) failures.splice(failures.indexOf(failure), 1);
        send(res, failure.status, 'Service internal error: injected failure', started);
        return;
      }
      if (method === 'GET' && url.pathname === '/') {
        // Qdrant answers its root without the envelope.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ title: 'qdrant - vector search engine', version: '1.19.0', commit: null }));
        return;
      }
      const decoded = decodeURIComponent(url.pathname);
      for (const [m, pattern, handler] of ROUTES) {
        const match = m === method ? pattern.exec(url.pathname) : null;
        if (!match) continue;
        const params = match.slice(1).map((p) => decodeURIComponent(p));
        try {
          send(res, 200, handler(engine, params, body), started);
        } catch (error) {
          if (
            error instanceof FakeBadRequest ||
            error instanceof FakeNotFound ||
            error instanceof FakeConflict
          ) {
            send(res, error.status, error.message, started);
          } else {
            send(res, 500, `Service internal error: ${(error as Error).message}`, started);
          }
        }
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route for ${method} ${decoded}`);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext(failure) {
      failures.push({ method: failure.method ?? '', status: 500, times: 1, ...failure });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
