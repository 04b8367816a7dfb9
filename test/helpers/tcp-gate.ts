/**
 * A TCP gate in front of a dependency (PostgreSQL, Qdrant), for tests of how a service lives
 * through its outage: `cut` drops every connection and refuses new ones; `freeze` keeps them
 * open and forwards nothing, as a partition does; `open` lets connections through again.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpGate {
  /** The port the gate listens on, on 127.0.0.1. */
  readonly port: number;
  cut(): void;
  freeze(): void;
  open(): void;
  close(): Promise<void>;
}

export async function startTcpGate(host: string, port: number): Promise<TcpGate> {
  let mode: 'open' | 'cut' | 'frozen' = 'open';
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    client.on('error', () => undefined);
    if (mode === 'cut') return client.destroy();
    if (mode === 'frozen') return void client.pause();
    const upstream = createConnection(port, host);
    upstream.on('error', () => undefined);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    for (const s of pair) s.on('close', () => pairs.delete(pair));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      mode = 'cut';
      for (const pair of pairs) for (const s of pair) s.destroy();
    },
    freeze() {
      mode = 'frozen';
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    open() {
      mode = 'open';
    },
    close: () =>
      new Promise((r) => {
        for (const pair of pairs) for (const s of pair) s.destroy();
        server.close(() => r());
      }),
  };
}
