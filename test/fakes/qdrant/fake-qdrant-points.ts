/**
 * Points, scoring and shared types of the in-repo Qdrant test server: payload selection,
 * Cosine normalisation and exact brute-force nearest-neighbour search with Qdrant's score
 * conventions (Cosine and Dot: higher is closer; Euclid and Manhattan: the distance, lower is
 * closer). Test code only.
 */
import {
  FakeBadRequest,
  compareIds,
  filterHolds,
  idKey,
  parsePointId,
  type PointId,
} from './fake-qdrant-filter.js';

/** Any parsed JSON value. */
export type Json = unknown;
/** A point payload. */
export type Payload = Record<string, Json>;
/** Qdrant's distance functions. */
export type Distance = 'Cosine' | 'Euclid' | 'Dot' | 'Manhattan';
/** Every distance Qdrant accepts. */
export const DISTANCES: readonly Distance[] = ['Cosine', 'Euclid', 'Dot', 'Manhattan'];

/** 404 with Qdrant's "Not found: ..." wording. */
export class FakeNotFound extends Error {
  readonly status = 404;
}
/** 409 with Qdrant's "Wrong input: ... already exists!" wording. */
export class FakeConflict extends Error {
  readonly status = 409;
}

/** A point as the fake stores it (cosine vectors already normalised, like Qdrant). */
export interface StoredPoint {
  id: PointId;
  vector: number[];
  payload: Payload;
  version: number;
}

/** One collection of the fake. */
export interface FakeCollection {
  size: number;
  distance: Distance;
  points: Map<string, StoredPoint>;
  payloadSchema: Map<string, { type: string; is_tenant?: boolean }>;
  version: number;
}

// Characters Qdrant refuses in a collection name (it must be usable as a directory name).
export const NAME_FORBIDDEN = /[<>:"/\\|?*]/;

/** A JSON object or a 400. */
export function obj(value: Json, what: string): Record<string, Json> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new FakeBadRequest(`Format error in JSON body: invalid type for ${what}, expected a map`);
  }
  return value as Record<string, Json>;
}

/** The payload a `with_payload` selector asks for (undefined for none). */
export function selectPayload(payload: Payload, selector: Json): Payload | undefined {
  if (selector === false || selector === undefined || selector === null) return undefined;
  if (selector === true) return { ...payload };
  if (Array.isArray(selector)) {
    return Object.fromEntries(Object.entries(payload).filter(([k]) => selector.includes(k)));
  }
  const s = obj(selector, 'with_payload');
  if (Array.isArray(s.include)) {
    const include = s.include as string[];
    return Object.fromEntries(Object.entries(payload).filter(([k]) => include.includes(k)));
  }
  if (Array.isArray(s.exclude)) {
    const exclude = s.exclude as string[];
    return Object.fromEntries(Object.entries(payload).filter(([k]) => !exclude.includes(k)));
  }
  return { ...payload };
}

/** Unit length, as Qdrant stores Cosine vectors. */
export function normalise(vector: number[]): number[] {
  const norm = Math.sqrt(vector.reduce((s, x) => s + x * x, 0));
  return norm === 0 ? vector.slice() : vector.map((x) => x / norm);
}

function score(c: FakeCollection, query: number[], p: StoredPoint): number {
  switch (c.distance) {
    case 'Cosine': {
      const q = normalise(query);
      return q.reduce((s, x, i) => s + x * (p.vector[i] ?? 0), 0);
    }
    case 'Dot':
      return query.reduce((s, x, i) => s + x * (p.vector[i] ?? 0), 0);
    case 'Euclid':
      return Math.sqrt(query.reduce((s, x, i) => s + (x - (p.vector[i] ?? 0)) ** 2, 0));
    case 'Manhattan':
      return query.reduce((s, x, i) => s + Math.abs(x - (p.vector[i] ?? 0)), 0);
  }
}

/** Exact nearest-neighbour search; `query` is a dense vector or the id of a stored point. */
export function nearestPoints(
  c: FakeCollection,
  b: Record<string, Json>,
  rawQuery: Json,
): Record<string, Json>[] {
  let query: number[];
  let exclude: string | undefined;
  if (Array.isArray(rawQuery) && rawQuery.every((x) => typeof x === 'number')) {
    query = rawQuery as number[];
  } else if (typeof rawQuery === 'number' || typeof rawQuery === 'string') {
    const source = c.points.get(idKey(parsePointId(rawQuery)));
    if (!source) throw new FakeNotFound(`Not found: No point with id ${String(rawQuery)} found`);
    query = source.vector;
    exclude = idKey(source.id);
  } else {
    throw new FakeBadRequest(
      'Format error in JSON body: the fake Qdrant supports only dense vector or point-id queries',
    );
  }
  if (query.length !== c.size) {
    throw new FakeBadRequest(
      `Wrong input: Vector dimension error: expected dim: ${c.size}, got ${query.length}`,
    );
  }
  const ascending = c.distance === 'Euclid' || c.distance === 'Manhattan';
  const threshold = b.score_threshold as number | undefined;
  const limit = (b.limit as number | undefined) ?? 10;
  const offset = (b.offset as number | undefined) ?? 0;
  return [...c.points.values()]
    .filter((p) => idKey(p.id) !== exclude && filterHolds(b.filter, p))
    .map((p) => ({ p, score: score(c, query, p) }))
    .filter(({ score }) => threshold === undefined || (ascending ? score <= threshold : score >= threshold))
    .sort((x, y) => (ascending ? x.score - y.score : y.score - x.score) || compareIds(x.p.id, y.p.id))
    .slice(offset, offset + limit)
    .map(({ p, score }) => {
      const out: Record<string, Json> = { id: p.id, version: p.version, score };
      const payload = selectPayload(p.payload, b.with_payload);
      if (payload) out.payload = payload;
      if (b.with_vector === true) out.vector = p.vector.slice();
      return out;
    });
}
