/**
 * The config snapshot: what the control plane serves at GET /v1/config and every proxy
 * runs on. Plans, tenants and prices are in exactly the shapes of the proxy's YAML, so a
 * proxy merges them over its file config and validates the result as it would the file.
 * The version is the ETag and the payload of the `configChannel` announcement.
 */
import type { PlanConfig, Price, TenantConfig } from './tenancy.js';

/** Where proxies fetch the snapshot from, relative to the control plane's URL. */
export const CONFIG_SNAPSHOT_PATH = '/v1/config';

export const VECTOR_MODES = ['collection', 'partition'] as const;
export const QDRANT_DISTANCES = ['Cosine', 'Euclid', 'Dot', 'Manhattan'] as const;

/** A logical collection every tenant gets (the control plane creates it, the proxy scopes it). */
export interface CollectionTemplate {
  name: string;
  size: number;
  distance: (typeof QDRANT_DISTANCES)[number];
}

/** The control plane's Qdrant layout; a proxy with `vector` configured takes it instead of its own. */
export interface VectorSection {
  mode: (typeof VECTOR_MODES)[number];
  templates: CollectionTemplate[];
}

export interface ConfigSnapshot {
  /** Increases with every change; the ETag. */
  version: number;
  plans: Record<string, PlanConfig>;
  tenants: TenantConfig[];
  pricing: Record<string, Price>;
  /** Present when the control plane manages Qdrant collections. */
  vector?: VectorSection;
}
