/**
 * Settles the reservation made by check-rate-limit once the response has ended: the worst
 * case is replaced by the metered tokens and cost (or released when nothing was used), and
 * the concurrency slot is freed. Runs after meter-usage on the way back, so usage is final.
 */
import type { Logger } from '../log.js';
import type { Stage } from '../stage.js';
import type { Store } from '../store/store.js';
import { totalTokens } from '../usage/usage.js';

export function createDebitQuotaStage(deps: { store: Store; logger: Logger }): Stage {
  return {
    name: 'debit-quota',
    async onResponseEnd(ctx) {
      const reservation = ctx.reservation;
      if (!reservation) return;
      try {
        await deps.store.settle(reservation, { tokens: totalTokens(ctx.usage), usd: ctx.costUsd ?? 0 });
      } catch (error) {
        deps.logger.error(
          { err: error, request_id: ctx.id, tenant: reservation.tenant },
          'settling a reservation failed',
        );
      }
    },
  };
}
