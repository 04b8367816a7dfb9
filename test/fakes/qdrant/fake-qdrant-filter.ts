/**
 * Point ids and filters as Qdrant defines them, for the in-repo test server only.
 * Ids are unsigned integers or UUIDs (any other string is a 400); filters combine
 * must / should / must_not / min_should over field conditions, has_id and nested filters.
 * Semantics follow Qdrant's filtering guide: `should` passes when any clause passes (or when
 * it is empty), array payload values match when any element matches.
 */

/** A point id as Qdrant returns it: a number or a lowercase hyphenated UUID. */
export type PointId = number | string;

/** A request Qdrant would refuse with 400; the message mimics Qdrant's wording. */
export class FakeBadRequest extends Error {
  readonly status = 400;
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Parses a point id; throws FakeBadRequest for anything but an unsigned integer or a UUID. */
export function parsePointId(raw: unknown): PointId {
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) return raw;
  if (typeof raw === 'string' && UUID.test(raw)) {
    const hex = raw.replace(/-/g, '').toLowerCase();
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  throw new FakeBadRequest(
    `Format error in JSON body: value ${JSON.stringify(raw)} is not a valid point ID, valid values are either an unsigned integer or a UUID`,
  );
}

/** Map key of an id: numbers and UUIDs never collide. */
export function idKey(id: PointId): string {
  return typeof id === 'number' ? `n:${id}` : `u:${id}`;
}

/** Qdrant's order of ids: every integer before every UUID, each ascending. */
export function compareIds(a: PointId, b: PointId): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

type Json = unknown;
type Payload = Record<string, Json>;

/** Every value at a dotted key path; `a[]` flattens an array, arrays on the way are searched. */
function valuesAt(payload: Payload, key: string): Json[] {
  let current: Json[] = [payload];
  for (const part of key.split('.')) {
    const name = part.endsWith('[]') ? part.slice(0, -2) : part;
    const next: Json[] = [];
    for (const value of current) {
      const objects = Array.isArray(value) ? value : [value];
      for (const obj of objects) {
        if (obj && typeof obj === 'object' && !Array.isArray(obj) && name in obj) {
          next.push((obj as Payload)[name]);
        }
      }
    }
    current = next;
  }
  return current.flatMap((v) => (Array.isArray(v) ? v : [v]));
}

function asArray(value: Json): Json[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function matches(match: Record<string, Json>, values: Json[]): boolean {
  if ('value' in match) return values.some((v) => v === match.value);
  if ('any' in match) return values.some((v) => (match.any as Json[]).includes(v));
  if ('except' in match)
    return values.length > 0 && values.every((v) => !(match.except as Json[]).includes(v));
  if ('text' in match) return values.some((v) => typeof v === 'string' && v.includes(String(match.text)));
  throw new FakeBadRequest('Format error in JSON body: unknown match variant');
}

function inRange(range: Record<string, number>, values: Json[]): boolean {
  return values.some(
    (v) =>
      typeof v === 'number' &&
      (range.gt === undefined || v > range.gt) &&
      (range.gte === undefined || v >= range.gte) &&
      (range.lt === undefined || v < range.lt) &&
      (range.lte === undefined || v <= range.lte),
  );
}

/** A point as filters see it. */
export interface FilterablePoint {
  id: PointId;
  payload: Payload;
}

function conditionHolds(condition: Json, point: FilterablePoint): boolean {
  if (!condition || typeof condition !== 'object' || Array.isArray(condition)) {
    throw new FakeBadRequest(
      'Format error in JSON body: data did not match any variant of untagged enum Condition',
    );
  }
  const c = condition as Record<string, Json>;
  if ('has_id' in c) {
    const wanted = new Set(asArray(c.has_id).map((id) => idKey(parsePointId(id))));
    return wanted.has(idKey(point.id));
  }
  if ('must' in c || 'should' in c || 'must_not' in c || 'min_should' in c) return filterHolds(c, point);
  if ('is_empty' in c) {
    const key = (c.is_empty as { key: string }).key;
    return valuesAt(point.payload, key).filter((v) => v !== null).length === 0;
  }
  if ('is_null' in c) {
    const key = (c.is_null as { key: string }).key;
    return valuesAt(point.payload, key).some((v) => v === null);
  }
  if (typeof c.key === 'string') {
    const values = valuesAt(point.payload, c.key);
    if (c.match && typeof c.match === 'object') return matches(c.match as Record<string, Json>, values);
    if (c.range && typeof c.range === 'object') return inRange(c.range as Record<string, number>, values);
  }
  throw new FakeBadRequest(
    'Format error in JSON body: data did not match any variant of untagged enum Condition',
  );
}

/** True when the point passes the filter; an absent filter passes everything. */
export function filterHolds(filter: Json, point: FilterablePoint): boolean {
  if (filter === undefined || filter === null) return true;
  if (typeof filter !== 'object' || Array.isArray(filter)) {
    throw new FakeBadRequest('Format error in JSON body: invalid type for filter, expected struct Filter');
  }
  const f = filter as Record<string, Json>;
  const must = asArray(f.must);
  const should = asArray(f.should);
  const mustNot = asArray(f.must_not);
  // Every clause is evaluated (no short-circuit) so a malformed one is a 400 like in Qdrant,
  // which validates the whole filter before it runs.
  const mustOk = must.map((c) => conditionHolds(c, point)).every(Boolean);
  const mustNotOk = !mustNot.map((c) => conditionHolds(c, point)).some(Boolean);
  const shouldResults = should.map((c) => conditionHolds(c, point));
  const shouldOk = should.length === 0 || shouldResults.some(Boolean);
  let minShouldOk = true;
  if (f.min_should && typeof f.min_should === 'object') {
    const ms = f.min_should as { conditions: Json[]; min_count: number };
    minShouldOk = asArray(ms.conditions).filter((c) => conditionHolds(c, point)).length >= ms.min_count;
  }
  return mustOk && mustNotOk && shouldOk && minShouldOk;
}
