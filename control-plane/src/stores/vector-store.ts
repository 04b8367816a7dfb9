/**
 * The control plane's view of per-tenant vector data (Qdrant). Routes and erasure code
 * against this interface; `qdrant.ts` implements it over Qdrant's REST API in either
 * isolation mode.
 */

/** A collection template from LANEKEEPER_COLLECTION_TEMPLATES. */
export type { CollectionTemplate } from '@lanekeeper/contract';

/** A tenant's logical collection, as the admin API shows it. */
export interface TenantCollection {
  /** Logical name (the template name), e.g. "documents". */
  name: string;
  /** Physical name in Qdrant: tenant_{id}_{name} (collection mode) or lanekeeper_{name} (partition mode). */
  physical: string;
  /** Points belonging to the tenant, when known. */
  points?: number;
}

/** What erasure removed from the vector store. */
export interface VectorErasureReport {
  collectionsDeleted: string[];
  pointsDeleted: number;
}

export interface VectorStore {
  readonly mode: 'collection' | 'partition';
  /** Creates every template collection for a new tenant; idempotent. */
  createTenantCollections(tenant: string): Promise<TenantCollection[]>;
  listCollections(tenant: string): Promise<TenantCollection[]>;
  /** Creates one collection from the template of that name; unknown names are refused. */
  createCollection(tenant: string, name: string): Promise<TenantCollection>;
  deleteCollection(tenant: string, name: string): Promise<boolean>;
  /** Removes all of a tenant's vector data; idempotent and safe to retry. */
  eraseTenant(tenant: string): Promise<VectorErasureReport>;
  healthy(): Promise<boolean>;
}
