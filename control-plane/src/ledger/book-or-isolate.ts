/**
 * Booking that one bad event cannot stall: the stream consumer and POST /v1/usage-events both
 * book through it. `bookEvents` already rejects the events it can recognise as bad; this also
 * covers content only PostgreSQL finds fault with (a figure out of a column's range, say).
 */
import type pg from 'pg';
import { bookEvents, isDataError, rejectEntry, type BookingDetail, type StreamEntry } from './book-events.js';

/**
 * Books a batch; when PostgreSQL refuses its content (a data error), books the entries one by
 * one and rejects only the guilty ones. Connection errors propagate, so the caller retries the
 * whole batch (booking is idempotent).
 */
export async function bookOrIsolate(pool: pg.Pool, entries: StreamEntry[]): Promise<BookingDetail> {
  try {
    return await bookEvents(pool, entries);
  } catch (error) {
    if (!isDataError(error)) throw error;
    let total = emptyResult();
    for (const entry of entries) total = sum(total, await bookOne(pool, entry));
    return total;
  }
}

async function bookOne(pool: pg.Pool, entry: StreamEntry): Promise<BookingDetail> {
  try {
    return await bookEvents(pool, [entry]);
  } catch (error) {
    if (!isDataError(error)) throw error;
    const reason = `refused by PostgreSQL: ${(error as Error).message}`;
    // An erased incarnation's event is dropped here too, not kept under the id's new tenant.
    if (!(await rejectEntry(pool, entry, reason))) return { ...emptyResult(), erased: 1 };
    return { ...emptyResult(), rejected: 1, rejects: [{ id: entry.id, reason }] };
  }
}

function emptyResult(): BookingDetail {
  return { inserted: 0, duplicates: 0, rejected: 0, rejects: [], erased: 0 };
}

function sum(a: BookingDetail, b: BookingDetail): BookingDetail {
  return {
    inserted: a.inserted + b.inserted,
    duplicates: a.duplicates + b.duplicates,
    rejected: a.rejected + b.rejected,
    rejects: [...a.rejects, ...b.rejects],
    erased: a.erased + b.erased,
  };
}
