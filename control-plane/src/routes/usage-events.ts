/**
 * POST /v1/usage-events: usage from proxies that have no Redis stream to write to (the
 * one-machine mode, REDIS_URL unset). Authorised by the proxy token. The body is
 * `{events: UsageEvent[]}` in the contract's event schema, at most MAX_EVENTS per call; a batch
 * with any bad event is refused whole (400, naming the first) so the sender learns at once
 * instead of the ledger quietly keeping rejects. Booking goes through the same bookEvents the
 * Redis ledger uses: keyed by request_id, so a batch posted twice (a retry after a lost reply)
 * is counted once.
 */
import { TENANT_ID_PATTERN, usageEventSchema } from '@lanekeeper/contract';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { BadRequestError } from '../errors.js';
import { bookEvents } from '../ledger/book-events.js';

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

export function registerUsageEventRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.post<{ Body: { events: unknown[] } }>(
    '/v1/usage-events',
    {
      bodyLimit: BODY_LIMIT,
      schema: { body: bodySchema },
      config: { auth: 'proxy', summary: 'Book a batch of usage events (proxies without Redis)' },
    },
    async (request) => {
      const entries = request.body.events.map((raw, index) => {
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
        return { id: `http:${parsed.data.request_id}`, fields: ['event', JSON.stringify(parsed.data)] };
      });
      const result = await bookEvents(deps.pool, entries);
      deps.metrics.ledgerRows.inc({ outcome: 'inserted' }, result.inserted);
      deps.metrics.ledgerRows.inc({ outcome: 'duplicate' }, result.duplicates);
      deps.metrics.ledgerRows.inc({ outcome: 'erased_tenant' }, result.erased);
      return { inserted: result.inserted, duplicates: result.duplicates, erased: result.erased };
    },
  );
}
