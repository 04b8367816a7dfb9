/**
 * POST /v1/usage-events: usage from proxies that have no Redis stream to write to (the
 * one-machine mode, REDIS_URL unset). Authorised by the proxy token. The body is
 * `{events: UsageEvent[]}` in the contract's event schema, at most MAX_EVENTS per call; a batch
 * with any event outside the schema is refused whole (400, naming the first) so a sender that
 * writes broken events learns at once instead of the ledger quietly keeping rejects.
 *
 * An event inside the schema that PostgreSQL still cannot book (a string with U+0000 or a lone
 * surrogate relayed from an upstream or a client, a figure beyond a column's range) is rejected
 * on its own, as the stream ledger does: the rest of the batch is booked and the reply lists
 * the rejected events. Refusing the batch instead would lose the other events (the proxy drops a
 * batch answered with a 4xx), and failing it with a 5xx would block the proxy's queue for good
 * (it retries a 5xx at the head of its queue). Booking is keyed by request_id, so a batch posted
 * twice (a retry after a lost reply) is counted once.
 */
import { TENANT_ID_PATTERN, usageEventSchema } from '@lanekeeper/contract';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { BadRequestError } from '../errors.js';
import type { Rejection, StreamEntry } from '../ledger/book-events.js';
import { bookOrIsolate } from '../ledger/book-or-isolate.js';
import { rejectEntry } from '../ledger/book-events.js';

/** The most events one call may carry; proxies batch below it. */
export const MAX_EVENTS = 500;
/** Bytes: 500 events of ~1 KiB leave ample room; anything bigger is not a proxy's batch. */
const BODY_LIMIT = 1024 * 1024;

const bodySchema = {
  type: 'object',
  required: ['events'],
  additionalProperties: false,
  properties: {
    events: { type: 'array', minItems: 1, maxItems: MAX_EVENTS, items: { type: 'object' } },
  },
} as const;

/** One event the ledger kept in usage_rejects instead of booking it. */
export interface RejectedEvent {
  /** Its position in the posted `events`. */
  index: number;
  request_id: string;
  reason: string;
}

export function registerUsageEventRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.post<{ Body: { events: unknown[] } }>(
    '/v1/usage-events',
    {
      bodyLimit: BODY_LIMIT,
      schema: { body: bodySchema },
      config: { auth: 'proxy', summary: 'Book a batch of usage events (proxies without Redis)' },
    },
    async (request) => {
      const parsed = request.body.events.map(toEntry);
      const now = Date.now();
      const entries: StreamEntry[] = [];
      const late: StreamEntry[] = [];
      for (const { entry, ts } of parsed) (inWindow(ts, now) ? entries : late).push(entry);
      const result = await bookOrIsolate(deps.pool, entries);
      for (const entry of late) {
        const reason = `ts outside what this route books (the last ${MAX_AGE_DAYS} days to ${MAX_AHEAD_MINUTES} minutes ahead)`;
        if (await rejectEntry(deps.pool, entry, reason)) {
          result.rejected++;
          result.rejects.push({ id: entry.id, reason });
        } else result.erased++;
      }
      deps.metrics.ledgerRows.inc({ outcome: 'inserted' }, result.inserted);
      deps.metrics.ledgerRows.inc({ outcome: 'duplicate' }, result.duplicates);
      deps.metrics.ledgerRows.inc({ outcome: 'rejected' }, result.rejected);
      deps.metrics.ledgerRows.inc({ outcome: 'erased_tenant' }, result.erased);
      // Positions as posted.
      const rejects = locate(
        parsed.map((e) => e.entry),
        result.rejects,
      );
      // deps.logger, not request.log: Fastify runs with logger: false, where request.log drops the line.
      if (rejects.length > 0) deps.logger.warn({ rejects }, 'usage events rejected (kept in usage_rejects)');
      return {
        inserted: result.inserted,
        duplicates: result.duplicates,
        erased: result.erased,
        rejected: result.rejected,
        rejects,
      };
    },
  );
}

/**
 * How far from now an event's `ts` may be. The proxy token sits on every proxy, where a
 * leak is likelier than the admin token's: with it, one event booked $4,000,000 into a
 * tenant's bill of March of the year before (found by review). A proxy posts within seconds,
 * and holds events a control-plane outage long at most; events outside are kept in
 * usage_rejects, for an operator to look at, not booked.
 */
const MAX_AGE_DAYS = 7;
const MAX_AHEAD_MINUTES = 5;

function inWindow(ts: number, now: number): boolean {
  return ts >= now - MAX_AGE_DAYS * 86_400_000 && ts <= now + MAX_AHEAD_MINUTES * 60_000;
}

/** Validates one posted event against the schema; throws the 400 that refuses the batch. */
function toEntry(raw: unknown, index: number): { entry: StreamEntry; ts: number } {
  const parsed = usageEventSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadRequestError(`events[${index}].${issue?.path.join('.')}: ${issue?.message}`);
  }
  if (!TENANT_ID_PATTERN.test(parsed.data.tenant)) {
    throw new BadRequestError(
      `events[${index}].tenant: not a tenant id (lowercase letters, digits and "-", at most 63)`,
    );
  }
  // The stream id column records where an entry came from; these never came from a stream.
  return {
    entry: { id: entryId(parsed.data.request_id), fields: ['event', JSON.stringify(parsed.data)] },
    ts: Date.parse(parsed.data.ts),
  };
}

const HTTP_ID = 'http:';
const entryId = (requestId: string) => `${HTTP_ID}${requestId}`;

/** Each rejection with the position of its event; two events with one request id take one each. */
function locate(entries: StreamEntry[], rejects: Rejection[]): RejectedEvent[] {
  const positions = new Map<string, number[]>();
  entries.forEach((entry, index) => positions.set(entry.id, [...(positions.get(entry.id) ?? []), index]));
  return rejects.map(({ id, reason }) => ({
    index: positions.get(id)?.shift() ?? -1,
    request_id: id.slice(HTTP_ID.length),
    reason,
  }));
}
