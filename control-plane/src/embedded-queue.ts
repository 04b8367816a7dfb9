/**
 * A correction to `@electric-sql/pglite-socket`'s query queue, which every connection to the
 * embedded database goes through (pglite issue #1046, still open in 0.2.17).
 *
 * Every connection shares PGlite's one session. The socket server queues each protocol
 * message on its own and keeps to one connection only while an SQL transaction is open. An
 * extended-protocol query (Parse, Bind, Describe, Execute, Sync: every query `pg` sends with
 * parameters) is no transaction between its messages, so two connections' queries
 * interleaved: one connection's Parse replaced the other's unnamed statement before its
 * Bind. That gave "unnamed prepared statement does not exist", or, when the two statements
 * took the same parameters, the other query's rows. A query that threw also left the queue
 * marked busy for good, so every later query waited forever.
 *
 * Here a connection keeps the session from its first extended-protocol message to its Sync,
 * as well as for a whole transaction, and a query that throws fails alone.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/** The queue's fields this module reads and replaces (private in the package). */
interface QueueInternals {
  queue: {
    handlerId: number;
    message: Uint8Array;
    resolve(bytes: number): void;
    reject(error: unknown): void;
    onData(data: Uint8Array): void;
  }[];
  processing: boolean;
  lastHandlerId: number | null;
  processQueue(): Promise<void>;
  clearQueueForHandler(handlerId: number): void;
}

/** Parse, Bind, Describe, Execute, Close, Flush: a batch stays open after these until its Sync. */
const EXTENDED = new Set([...'PBDECH'].map((c) => c.charCodeAt(0)));
/** A Sync message, to close the batch of a connection that went away in the middle of it. */
const SYNC = new Uint8Array([0x53, 0, 0, 0, 4]);

/**
 * Replaces the server's queue processing (see the file header). Throws when the package's
 * queue no longer has the shape this was written for, so an upgrade fails at start, in
 * tests, rather than running on unchecked.
 */
export function isolateConnections(server: PGLiteSocketServer, db: PGlite): void {
  const q = (server as unknown as { queryQueue?: QueueInternals }).queryQueue;
  if (
    !q ||
    !Array.isArray(q.queue) ||
    typeof q.processQueue !== 'function' ||
    typeof q.clearQueueForHandler !== 'function' ||
    !('lastHandlerId' in q) ||
    !('processing' in q)
  ) {
    throw new Error('@electric-sql/pglite-socket: its query queue changed; embedded-queue.ts needs updating');
  }
  // The connection whose extended-protocol batch has not reached its Sync yet.
  let batchOwner: number | null = null;

  q.processQueue = async function processQueue(): Promise<void> {
    if (q.processing || q.queue.length === 0) return;
    q.processing = true;
    try {
      while (q.queue.length > 0) {
        const owner = batchOwner ?? (db.isInTransaction() ? q.lastHandlerId : null);
        const index = owner === null ? 0 : q.queue.findIndex((m) => m.handlerId === owner);
        // The owner's next message has not arrived: the next enqueue starts the loop again.
        if (index === -1) break;
        const query = q.queue.splice(index, 1)[0]!;
        let bytes = 0;
        try {
          await db.runExclusive(() =>
            db.execProtocolRawStream(query.message, {
              onRawData: (data) => {
                bytes += data.length;
                query.onData(data);
              },
            }),
          );
        } catch (error) {
          batchOwner = null;
          query.reject(error);
          continue;
        }
        batchOwner = EXTENDED.has(query.message[0]!) ? query.handlerId : null;
        q.lastHandlerId = query.handlerId;
        query.resolve(bytes);
      }
    } finally {
      q.processing = false;
    }
  };

  const clear = q.clearQueueForHandler.bind(q);
  q.clearQueueForHandler = (handlerId: number) => {
    clear(handlerId);
    if (batchOwner !== handlerId) return;
    batchOwner = null;
    void db
      .runExclusive(() => db.execProtocolRaw(SYNC))
      .catch(() => undefined)
      .then(() => q.processQueue());
  };
}
