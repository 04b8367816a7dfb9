/**
 * The data side of the in-repo Qdrant test server: collections, points, payload indexes,
 * aliases (scoring lives in fake-qdrant-points.ts). Only what Lanekeeper uses is here, with Qdrant's
 * semantics and error wording where we rely on them. It is a test double for CI; it is never
 * shipped, and the contract suite checks that it answers like a real Qdrant.
 */
import { FakeBadRequest, compareIds, filterHolds, idKey, parsePointId } from './fake-qdrant-filter.js';
import {
  DISTANCES,
  FakeConflict,
  FakeNotFound,
  NAME_FORBIDDEN,
  nearestPoints,
  normalise,
  obj,
  selectPayload,
  type Distance,
  type FakeCollection,
  type Json,
  type StoredPoint,
} from './fake-qdrant-points.js';

export { FakeConflict, FakeNotFound } from './fake-qdrant-points.js';

/** The state of one fake Qdrant instance. */
export class FakeQdrantEngine {
  private readonly collections = new Map<string, FakeCollection>();
  private readonly aliases = new Map<string, string>();
  private operationId = 0;

  private get(name: string): FakeCollection {
    const target = this.collections.get(name) ?? this.collections.get(this.aliases.get(name) ?? '');
    if (!target) throw new FakeNotFound(`Not found: FakeCollection \`${name}\` doesn't exist!`);
    return target;
  }

  private updated(): { operation_id: number; status: string } {
    this.operationId += 1;
    return { operation_id: this.operationId, status: 'completed' };
  }

  listCollections(): { collections: { name: string }[] } {
    return { collections: [...this.collections.keys()].map((name) => ({ name })) };
  }

  exists(name: string): { exists: boolean } {
    return { exists: this.collections.has(name) || this.aliases.has(name) };
  }

  createCollection(name: string, body: Json): boolean {
    if (name.length === 0 || name.length > 255 || NAME_FORBIDDEN.test(name)) {
      throw new FakeBadRequest(`Validation error in path parameters: [name: collection name is invalid]`);
    }
    const vectors = obj(obj(body ?? {}, 'body').vectors, 'vectors');
    const size = vectors.size;
    const distance = vectors.distance as Distance;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) {
      throw new FakeBadRequest(
        'Validation error in JSON body: [vectors.size: value 0 invalid, must be 1 or larger]',
      );
    }
    if (!DISTANCES.includes(distance)) {
      throw new FakeBadRequest(
        `Format error in JSON body: unknown variant \`${String(distance)}\`, expected one of \`Cosine\`, \`Euclid\`, \`Dot\`, \`Manhattan\``,
      );
    }
    if (this.collections.has(name) || this.aliases.has(name)) {
      throw new FakeConflict(`Wrong input: FakeCollection \`${name}\` already exists!`);
    }
    this.collections.set(name, { size, distance, points: new Map(), payloadSchema: new Map(), version: 0 });
    return true;
  }

  deleteCollection(name: string): boolean {
    if (!this.collections.delete(name)) return false;
    for (const [alias, target] of this.aliases) if (target === name) this.aliases.delete(alias);
    return true;
  }

  collectionInfo(name: string): Record<string, Json> {
    const c = this.get(name);
    const schema = Object.fromEntries(
      [...c.payloadSchema].map(([field, params]) => [
        field,
        {
          data_type: params.type,
          params,
          points: [...c.points.values()].filter((p) => field in p.payload).length,
        },
      ]),
    );
    return {
      status: 'green',
      optimizer_status: 'ok',
      indexed_vectors_count: 0,
      points_count: c.points.size,
      segments_count: 1,
      // Writes Qdrant has yet to apply (the fake applies them at once), and its warnings.
      update_queue: { length: 0 },
      warnings: [],
      config: {
        params: {
          vectors: { size: c.size, distance: c.distance },
          shard_number: 1,
          replication_factor: 1,
          write_consistency_factor: 1,
          on_disk_payload: true,
        },
        hnsw_config: {
          m: 16,
          ef_construct: 100,
          full_scan_threshold: 10000,
          max_indexing_threads: 0,
          on_disk: false,
        },
        optimizer_config: {
          deleted_threshold: 0.2,
          vacuum_min_vector_number: 1000,
          default_segment_number: 0,
          flush_interval_sec: 5,
        },
        wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
        quantization_config: null,
      },
      payload_schema: schema,
    };
  }

  createIndex(name: string, body: Json): Record<string, Json> {
    const c = this.get(name);
    const b = obj(body, 'body');
    if (typeof b.field_name !== 'string' || b.field_name.length === 0) {
      throw new FakeBadRequest('Format error in JSON body: missing field `field_name`');
    }
    const schema = b.field_schema;
    const params =
      typeof schema === 'string'
        ? { type: schema }
        : (obj(schema, 'field_schema') as { type: string; is_tenant?: boolean });
    c.payloadSchema.set(b.field_name, { ...params });
    return this.updated();
  }

  upsert(name: string, body: Json): Record<string, Json> {
    const c = this.get(name);
    const b = obj(body, 'body');
    const incoming: { id: Json; vector: Json; payload: Json }[] = [];
    // Qdrant reads `batch` whenever the key is there and then ignores `points`.
    if ('batch' in b) {
      const batch = obj(b.batch, 'batch') as { ids: Json[]; vectors: Json[]; payloads?: Json[] };
      batch.ids.forEach((id, i) =>
        incoming.push({ id, vector: batch.vectors[i], payload: batch.payloads?.[i] }),
      );
    } else if (Array.isArray(b.points)) {
      for (const p of b.points) {
        const point = obj(p, 'point');
        incoming.push({ id: point.id, vector: point.vector, payload: point.payload });
      }
    } else {
      throw new FakeBadRequest(
        'Format error in JSON body: data did not match any variant of untagged enum PointInsertOperations',
      );
    }
    const prepared = incoming.map((p) => {
      const id = parsePointId(p.id);
      if (!Array.isArray(p.vector) || !p.vector.every((x) => typeof x === 'number')) {
        throw new FakeBadRequest(
          'Format error in JSON body: the fake Qdrant supports only one unnamed dense vector',
        );
      }
      if (p.vector.length !== c.size) {
        throw new FakeBadRequest(
          `Wrong input: Vector dimension error: expected dim: ${c.size}, got ${p.vector.length}`,
        );
      }
      const payload = p.payload === undefined || p.payload === null ? {} : obj(p.payload, 'payload');
      return { id, vector: c.distance === 'Cosine' ? normalise(p.vector) : p.vector.slice(), payload };
    });
    const mode = b.update_mode ?? 'upsert';
    c.version += 1;
    for (const p of prepared) {
      const existing = c.points.get(idKey(p.id));
      // update_filter: an existing point is replaced only when it matches; new points are always inserted.
      if (existing && (mode === 'insert_only' || !filterHolds(b.update_filter, existing))) continue;
      if (!existing && mode === 'update_only') continue;
      c.points.set(idKey(p.id), { ...p, payload: structuredClone(p.payload), version: c.version });
    }
    return this.updated();
  }

  private selected(c: FakeCollection, body: Record<string, Json>): StoredPoint[] {
    if (Array.isArray(body.points)) {
      return body.points.map((raw) => c.points.get(idKey(parsePointId(raw)))).filter((p) => p !== undefined);
    }
    if (body.filter !== undefined) return [...c.points.values()].filter((p) => filterHolds(body.filter, p));
    throw new FakeBadRequest('Format error in JSON body: expected `points` or `filter`');
  }

  deletePoints(name: string, body: Json): Record<string, Json> {
    const c = this.get(name);
    for (const p of this.selected(c, obj(body, 'body'))) c.points.delete(idKey(p.id));
    return this.updated();
  }

  /** set (merge), overwrite (replace), delete keys, or clear, over ids or a filter. */
  updatePayload(
    name: string,
    body: Json,
    how: 'set' | 'overwrite' | 'delete' | 'clear',
  ): Record<string, Json> {
    const c = this.get(name);
    const b = obj(body, 'body');
    for (const p of this.selected(c, b)) {
      if (how === 'set') Object.assign(p.payload, structuredClone(obj(b.payload, 'payload')));
      if (how === 'overwrite') p.payload = structuredClone(obj(b.payload, 'payload'));
      if (how === 'delete') for (const key of (b.keys as string[]) ?? []) delete p.payload[key];
      if (how === 'clear') p.payload = {};
    }
    return this.updated();
  }

  /** Replaces vectors of existing points; a missing id is a 404 and nothing is changed. */
  updateVectors(name: string, body: Json): Record<string, Json> {
    const c = this.get(name);
    const points = obj(body, 'body').points;
    if (!Array.isArray(points)) throw new FakeBadRequest('Format error in JSON body: missing field `points`');
    const updates = points.map((raw) => {
      const p = obj(raw, 'point');
      const id = parsePointId(p.id);
      const stored = c.points.get(idKey(id));
      if (!stored) throw new FakeNotFound(`Not found: No point with id ${String(p.id)} found`);
      if (!Array.isArray(p.vector) || p.vector.length !== c.size) {
        throw new FakeBadRequest(`Wrong input: Vector dimension error: expected dim: ${c.size}`);
      }
      return { stored, vector: p.vector as number[] };
    });
    const updateFilter = obj(body, 'body').update_filter;
    for (const { stored, vector } of updates) {
      if (!filterHolds(updateFilter, stored)) continue;
      stored.vector = c.distance === 'Cosine' ? normalise(vector) : vector.slice();
    }
    return this.updated();
  }

  /** Deleting vectors needs named vectors, which the fake does not model. */
  deleteVectors(name: string): never {
    this.get(name);
    throw new FakeBadRequest(
      'Wrong input: the fake Qdrant has only the unnamed default vector, which cannot be deleted',
    );
  }

  private record(p: StoredPoint, withPayload: Json, withVector: Json): Record<string, Json> {
    return {
      id: p.id,
      payload: selectPayload(p.payload, withPayload) ?? null,
      vector: withVector === true ? p.vector.slice() : null,
    };
  }

  retrieve(name: string, body: Json): Record<string, Json>[] {
    const c = this.get(name);
    const b = obj(body, 'body');
    if (!Array.isArray(b.ids)) throw new FakeBadRequest('Format error in JSON body: missing field `ids`');
    const out: Record<string, Json>[] = [];
    for (const raw of b.ids) {
      const p = c.points.get(idKey(parsePointId(raw)));
      if (p) out.push(this.record(p, b.with_payload ?? true, b.with_vector ?? false));
    }
    return out;
  }

  getPoint(name: string, rawId: string): Record<string, Json> {
    const c = this.get(name);
    const id = parsePointId(/^\d+$/.test(rawId) ? Number(rawId) : rawId);
    const p = c.points.get(idKey(id));
    if (!p) throw new FakeNotFound(`Not found: No point with id ${rawId} found`);
    return this.record(p, true, true);
  }

  scroll(name: string, body: Json): Record<string, Json> {
    const c = this.get(name);
    const b = obj(body ?? {}, 'body');
    const limit = (b.limit as number | undefined) ?? 10;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new FakeBadRequest(
        'Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]',
      );
    }
    if (b.order_by !== undefined) {
      throw new FakeBadRequest('Format error in JSON body: the fake Qdrant does not implement order_by');
    }
    const offset = b.offset === undefined || b.offset === null ? undefined : parsePointId(b.offset);
    const sorted = [...c.points.values()]
      .filter((p) => offset === undefined || compareIds(p.id, offset) >= 0)
      .filter((p) => filterHolds(b.filter, p))
      .sort((x, y) => compareIds(x.id, y.id));
    const page = sorted.slice(0, limit);
    return {
      points: page.map((p) => this.record(p, b.with_payload ?? true, b.with_vector ?? false)),
      next_page_offset: sorted[limit]?.id ?? null,
    };
  }

  count(name: string, body: Json): { count: number } {
    const c = this.get(name);
    const b = obj(body ?? {}, 'body');
    return { count: [...c.points.values()].filter((p) => filterHolds(b.filter, p)).length };
  }

  /** Exact facet counts of a payload key's scalar values (Qdrant's `exact: true`), most first. */
  facet(name: string, body: Json): { hits: { value: Json; count: number }[] } {
    const c = this.get(name);
    const b = obj(body ?? {}, 'body');
    if (typeof b.key !== 'string') throw new FakeBadRequest('Format error in JSON body: missing field `key`');
    const counts = new Map<string, { value: Json; count: number }>();
    for (const p of c.points.values()) {
      if (!filterHolds(b.filter, p)) continue;
      const value = (p.payload as Record<string, Json>)[b.key];
      if (value === undefined || value === null || typeof value === 'object') continue;
      const hit = counts.get(JSON.stringify(value)) ?? { value, count: 0 };
      hit.count++;
      counts.set(JSON.stringify(value), hit);
    }
    const limit = typeof b.limit === 'number' ? b.limit : 10;
    return { hits: [...counts.values()].sort((x, y) => y.count - x.count).slice(0, limit) };
  }

  query(name: string, body: Json): { points: Record<string, Json>[] } {
    const c = this.get(name);
    const b = obj(body ?? {}, 'body');
    if (b.prefetch !== undefined || b.lookup_from !== undefined) {
      throw new FakeBadRequest(
        'Format error in JSON body: the fake Qdrant does not implement prefetch or lookup_from',
      );
    }
    const q =
      b.query && typeof b.query === 'object' && 'nearest' in b.query
        ? (b.query as { nearest: Json }).nearest
        : b.query;
    return { points: nearestPoints(c, b, q) };
  }

  queryBatch(name: string, body: Json): { points: Record<string, Json>[] }[] {
    const searches = obj(body, 'body').searches;
    if (!Array.isArray(searches))
      throw new FakeBadRequest('Format error in JSON body: missing field `searches`');
    return searches.map((s) => this.query(name, s));
  }

  search(name: string, body: Json): Record<string, Json>[] {
    const c = this.get(name);
    const b = obj(body, 'body');
    return nearestPoints(c, b, b.vector);
  }

  searchBatch(name: string, body: Json): Record<string, Json>[][] {
    const searches = obj(body, 'body').searches;
    if (!Array.isArray(searches))
      throw new FakeBadRequest('Format error in JSON body: missing field `searches`');
    return searches.map((s) => this.search(name, s));
  }

  listAliases(collection?: string): { aliases: { alias_name: string; collection_name: string }[] } {
    if (collection !== undefined) this.get(collection);
    return {
      aliases: [...this.aliases]
        .filter(([, target]) => collection === undefined || target === collection)
        .map(([alias_name, collection_name]) => ({ alias_name, collection_name })),
    };
  }

  updateAliases(body: Json): boolean {
    const actions = obj(body, 'body').actions;
    if (!Array.isArray(actions))
      throw new FakeBadRequest('Format error in JSON body: missing field `actions`');
    for (const action of actions as Record<string, Record<string, string>>[]) {
      if (action.create_alias) {
        const { collection_name, alias_name } = action.create_alias;
        this.get(collection_name ?? '');
        this.aliases.set(alias_name ?? '', collection_name ?? '');
      } else if (action.delete_alias) {
        const alias = action.delete_alias.alias_name ?? '';
        if (!this.aliases.delete(alias)) throw new FakeNotFound(`Not found: Alias ${alias} does not exists!`);
      } else {
        throw new FakeBadRequest('Format error in JSON body: unknown alias action');
      }
    }
    return true;
  }
}
