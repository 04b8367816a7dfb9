/**
 * Everything derived once from a validated config and shared by every request that arrives
 * while it is in force: tenants with their plans merged, the API-key index, the JWT
 * verifier and custom dialects. A reload builds a new Runtime; requests in flight keep theirs.
 */
import type { OutageLogger } from '@lanekeeper/contract';
import type { Config, PlanConfig, TenantConfig } from './config/schema.js';
import type { ResolvedTenant } from './context.js';
import type { Dialect } from './dialects/dialect.js';
import { createCustomDialect } from './dialects/custom.js';
import { dialectByName } from './dialects/index.js';
import { routeModel, type UpstreamConfig } from './config/upstreams.js';
import { createJwtVerifier, type JwtVerifier } from './identity/jwt.js';
import { createSlicer, forEachInSlices, type SlicePolicy } from './config/slices.js';

export interface Runtime {
  readonly config: Config;
  readonly tenants: ReadonlyMap<string, ResolvedTenant>;
  /**
   * sha256 hex of an API key -> its tenant: the tenant itself, not its id, so identifying a
   * request is one lookup in a table as large as the key count, not two.
   */
  readonly keyIndex: ReadonlyMap<string, ResolvedTenant>;
  readonly jwt: JwtVerifier | undefined;
  readonly customDialects: readonly Dialect[];
  /** The upstreams in the order they are matched (one, "default", for a single `upstream:`). */
  readonly upstreams: readonly Upstream[];
  /** The first upstream whose `models` match the upstream model id. */
  upstreamFor(model: string): Upstream | undefined;
}

/** One upstream, resolved once per config. */
export interface Upstream {
  readonly name: string;
  readonly config: UpstreamConfig;
  /** `url` split once: the origin to dispatch to and the path every request path is appended to. */
  readonly origin: string;
  readonly pathPrefix: string;
  /** The dialect it speaks; undefined for `auto` (whatever the client speaks passes through). */
  readonly dialect: Dialect | undefined;
}

/** The plan with a tenant's overrides merged in: maps merge key by key, other fields replace. */
export function mergePlan(plan: PlanConfig, overrides: TenantConfig['overrides']): PlanConfig {
  return {
    models: { ...plan.models, ...overrides.models },
    rate_limits: { ...plan.rate_limits, ...overrides.rate_limits },
    max_context: overrides.max_context ?? plan.max_context,
    max_output_tokens: overrides.max_output_tokens ?? plan.max_output_tokens,
    max_choices: overrides.max_choices ?? plan.max_choices,
    features: overrides.features ?? plan.features,
    custom_prompts: { ...plan.custom_prompts, ...overrides.custom_prompts },
    enforce_mid_stream: overrides.enforce_mid_stream ?? plan.enforce_mid_stream,
    allow_paths: overrides.allow_paths ?? plan.allow_paths,
  };
}

/**
 * Builds the runtime for a config. `previous` lets an unchanged JWT setting keep its
 * verifier, so a reload does not throw away the cached JWKS.
 */
export function buildRuntime(config: Config, previous?: Runtime, options: RuntimeOptions = {}): Runtime {
  const index = emptyIndex();
  for (const tenant of config.tenants) indexTenant(config, tenant, index);
  return assemble(config, index, previous, options);
}

export interface RuntimeOptions {
  /** How a live reload yields to requests (config/slices.ts). */
  slices?: SlicePolicy;
  /** Told of the outages of the dependencies the runtime holds (the JWKS endpoint). */
  logger?: OutageLogger;
}

/**
 * buildRuntime for a live reload: the tenants are indexed one slice at a time, the event loop
 * running between slices. The maps are private until the runtime is returned, so requests
 * never see a half-built index.
 */
export async function buildRuntimeInSlices(
  config: Config,
  previous?: Runtime,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const index = emptyIndex();
  await forEachInSlices(
    config.tenants,
    (tenant) => indexTenant(config, tenant, index),
    createSlicer(options.slices),
  );
  return assemble(config, index, previous, options);
}

interface TenantIndex {
  tenants: Map<string, ResolvedTenant>;
  keyIndex: Map<string, ResolvedTenant>;
  /** The merged plan of tenants without overrides, one per plan name (see indexTenant). */
  plainPlans: Map<string, PlanConfig>;
}

function emptyIndex(): TenantIndex {
  return { tenants: new Map(), keyIndex: new Map(), plainPlans: new Map() };
}

function hasOverrides(overrides: TenantConfig['overrides']): boolean {
  for (const value of Object.values(overrides)) if (value !== undefined) return true;
  return false;
}

/** Freezes the plan and the maps and lists in it, which tenants without overrides share. */
function freezePlan(plan: PlanConfig): PlanConfig {
  for (const inner of Object.values(plan))
    if (typeof inner === 'object' && inner !== null) Object.freeze(inner);
  return Object.freeze(plan);
}

function indexTenant(config: Config, tenant: TenantConfig, index: TenantIndex): void {
  const plan = Object.hasOwn(config.plans, tenant.plan) ? config.plans[tenant.plan] : undefined;
  // parseConfig guarantees the plan exists; the guard keeps the types honest.
  if (!plan) return;
  // Tenants without overrides share one merged (and frozen) plan per plan name: with 10,000
  // tenants on a few plans, a request then reads plan and limits that other tenants' requests
  // keep in the CPU cache, instead of its own copy that 999 other tenants' requests evicted.
  let merged: PlanConfig | undefined;
  if (hasOverrides(tenant.overrides)) merged = freezePlan(mergePlan(plan, tenant.overrides));
  else {
    merged = index.plainPlans.get(tenant.plan);
    if (!merged) {
      merged = freezePlan(mergePlan(plan, tenant.overrides));
      index.plainPlans.set(tenant.plan, merged);
    }
  }
  const resolved: ResolvedTenant = { id: tenant.id, planName: tenant.plan, plan: merged, config: tenant };
  index.tenants.set(tenant.id, resolved);
  for (const hash of tenant.api_key_sha256) index.keyIndex.set(hash, resolved);
}

function assemble(
  config: Config,
  { tenants, keyIndex }: TenantIndex,
  previous: Runtime | undefined,
  options: RuntimeOptions,
): Runtime {
  const customDialects = config.dialects.map(createCustomDialect);
  const upstreams = Object.entries(config.upstreams).map(([name, upstream]) =>
    resolveUpstream(name, upstream, customDialects),
  );
  const routes = new Map<string, Upstream | undefined>();
  const jwtConfig = config.identity.jwt;
  const sameJwt =
    previous?.jwt !== undefined && JSON.stringify(previous.config.identity.jwt) === JSON.stringify(jwtConfig);
  return {
    config,
    tenants,
    keyIndex,
    jwt: sameJwt
      ? previous.jwt
      : jwtConfig
        ? createJwtVerifier(jwtConfig, { logger: options.logger })
        : undefined,
    customDialects,
    upstreams,
    upstreamFor(model) {
      // Model ids come from the plans, so the memo stays as small as they are.
      if (upstreams.length === 1 && !config.multiUpstream) return upstreams[0];
      if (routes.has(model)) return routes.get(model);
      const name = routeModel(config.upstreams, model);
      const upstream = upstreams.find((u) => u.name === name);
      if (routes.size < 10_000) routes.set(model, upstream);
      return upstream;
    },
  };
}

function resolveUpstream(name: string, config: UpstreamConfig, customDialects: readonly Dialect[]): Upstream {
  const parsed = new URL(config.url);
  return {
    name,
    config,
    origin: parsed.origin,
    pathPrefix: parsed.pathname.replace(/\/+$/, ''),
    dialect: config.dialect === 'auto' ? undefined : dialectByName(config.dialect, customDialects),
  };
}

/** The upstream a request without a model goes to: the first that speaks the client's dialect. */
export function passThroughUpstream(runtime: Runtime, dialect: Dialect | undefined): Upstream {
  const first = runtime.upstreams[0] as Upstream;
  if (runtime.upstreams.length === 1 || !dialect) return first;
  return runtime.upstreams.find((u) => u.dialect === undefined || u.dialect.name === dialect.name) ?? first;
}
