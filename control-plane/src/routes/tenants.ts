/**
 * Tenants: POST/GET/PATCH/DELETE /v1/tenants[/{id}]. Onboarding creates the tenant's
 * vector collections from the templates before committing, so a tenant either exists with
 * its collections or not at all. DELETE is the erasure of issue 6 (erasure/erase-tenant.ts).
 */
import type { FastifyInstance } from 'fastify';
import { overridesSchema, type TenantConfig } from '@lanekeeper/contract';
import { requireServedModels } from '../upstream-models.js';
import type { AppDeps } from '../app.js';
import { commitChange } from '../changes.js';
import { eraseTenant } from '../erasure/erase-tenant.js';
import { BadRequestError, ConflictError, NotFoundError, UpstreamStoreError } from '../errors.js';
import { actorOf } from '../http/auth.js';
import { decodeCursor, pageOf } from '../http/cursor.js';
import { pageQuery, parseWith, tenantCreateBody, tenantParams, tenantPatchBody } from '../http/schemas.js';
import { findErasureRecord } from '../stores/audit.js';
import { getPlan } from '../stores/plans.js';
import type { Db } from '../stores/postgres.js';
import { getTenant, insertTenant, listTenants, updateTenant } from '../stores/tenants.js';
import { unmarkErased } from '../erasure/erase-redis.js';
import { admin } from '../http/openapi.js';

type Status = 'active' | 'suspended';
type Overrides = TenantConfig['overrides'];

async function requirePlan(db: Db, plan: string): Promise<void> {
  if (!(await getPlan(db, plan))) {
    throw new BadRequestError(`body.plan: plan "${plan}" does not exist`, [
      { field: 'body.plan', message: `plan "${plan}" does not exist` },
    ]);
  }
}

export function registerTenantRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.post<{ Body: { id: string; plan: string; status?: Status; overrides?: unknown } }>(
    '/v1/tenants',
    {
      schema: { body: tenantCreateBody },
      config: admin('Onboard a tenant (creates its vector collections)', { 201: 'The tenant' }),
    },
    async (request, reply) => {
      const { id, plan, status = 'active' } = request.body;
      const overrides: Overrides = parseWith(overridesSchema, request.body.overrides ?? {}, 'body.overrides');
      requireServedModels(
        deps.config.upstreamModels,
        overrides.models,
        'body.overrides.models',
        `tenant "${request.body.id}"`,
      );
      const created = await commitChange(deps, actorOf(request), async (db) => {
        await requirePlan(db, plan);
        const erasing = await db.query(`SELECT 1 FROM erasure_jobs WHERE tenant_id = $1`, [id]);
        if (erasing.rowCount)
          throw new ConflictError(`tenant "${id}" is being erased: finish with DELETE /v1/tenants/${id}`);
        const row = await insertTenant(db, { id, plan, status, overrides });
        if (!row) throw new ConflictError(`tenant "${id}" already exists`);
        // An id erased before starts clean: its Redis tombstone goes, and what Qdrant still
        // holds under it. Before the commit, so that a Redis that does not answer fails the
        // creation instead of answering 500 for a tenant already created.
        const erasedBefore = (await findErasureRecord(db, id)) !== undefined;
        if (erasedBefore) await unmarkErased(deps.redis, deps.config.keyPrefix, id);
        const collections = deps.vectors ? await createCollections(deps, id, erasedBefore) : [];
        return {
          result: { ...row, collections },
          audit: {
            action: 'tenant.create',
            resource: `tenants/${id}`,
            after: { plan, status, overrides, collections },
          },
          affectsConfig: true,
        };
      });
      return reply.code(201).send(created);
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/tenants',
    { schema: { querystring: pageQuery }, config: admin('List tenants') },
    async (request) => {
      const { limit, cursor } = request.query;
      const rows = await listTenants(deps.pool, {
        limit: limit + 1,
        after: decodeCursor<string>(cursor, 'string'),
      });
      return pageOf(rows, limit, (t) => t.id);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/tenants/:id',
    { schema: { params: tenantParams }, config: admin('Read a tenant') },
    async (request) => {
      const tenant = await getTenant(deps.pool, request.params.id);
      if (!tenant) throw new NotFoundError(`tenant "${request.params.id}" does not exist`);
      return tenant;
    },
  );

  app.patch<{ Params: { id: string }; Body: { plan?: string; status?: Status; overrides?: unknown } }>(
    '/v1/tenants/:id',
    {
      schema: { params: tenantParams, body: tenantPatchBody },
      config: admin('Change plan, status or overrides'),
    },
    async (request) => {
      const { id } = request.params;
      const overrides =
        request.body.overrides === undefined
          ? undefined
          : (parseWith(overridesSchema, request.body.overrides, 'body.overrides') as Overrides);
      requireServedModels(
        deps.config.upstreamModels,
        overrides?.models,
        'body.overrides.models',
        `tenant "${request.params.id}"`,
      );
      return commitChange(deps, actorOf(request), async (db) => {
        const before = await getTenant(db, id, true);
        if (!before) throw new NotFoundError(`tenant "${id}" does not exist`);
        if (request.body.plan !== undefined) await requirePlan(db, request.body.plan);
        const next = {
          plan: request.body.plan ?? before.plan,
          status: request.body.status ?? before.status,
          overrides: overrides ?? before.overrides,
        };
        const after = await updateTenant(db, id, next);
        const { plan, status } = before;
        return {
          result: after,
          audit: {
            action: 'tenant.update',
            resource: `tenants/${id}`,
            before: { plan, status, overrides: before.overrides },
            after: next,
          },
          affectsConfig: true,
        };
      });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/tenants/:id',
    {
      schema: { params: tenantParams },
      config: admin('Erase a tenant everywhere (GDPR); idempotent, resumable'),
    },
    async (request) => eraseTenant(deps, request.params.id, actorOf(request)),
  );
}

async function createCollections(deps: AppDeps, tenant: string, erasedBefore: boolean) {
  try {
    // An id erased before may still have vectors in Qdrant, which has no tombstone: a write a
    // proxy took after the erasure's sweeps. They were the erased tenant's; this one starts
    // empty. (Only then: a first creation keeps what an existing deployment already holds.)
    if (erasedBefore) await deps.vectors!.eraseTenant(tenant);
    return await deps.vectors!.createTenantCollections(tenant);
  } catch (error) {
    throw new UpstreamStoreError(
      `could not create the tenant's vector collections: ${(error as Error).message}`,
    );
  }
}
