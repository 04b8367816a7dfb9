/**
 * Plans: POST/GET/PUT/PATCH/DELETE /v1/plans[/{id}]. The body is a plan in the proxy's YAML
 * shape; PATCH replaces the top-level fields it names, PUT creates the plan or replaces it
 * whole (what `lanekeeper plans apply` sends, so a field removed from the file is removed from
 * the plan). A plan in use cannot be deleted (409).
 */
import type { FastifyInstance } from 'fastify';
import { planSchema, type PlanConfig } from '@lanekeeper/contract';
import type { AppDeps } from '../app.js';
import { commitChange } from '../changes.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { actorOf } from '../http/auth.js';
import { decodeCursor, pageOf } from '../http/cursor.js';
import { requireServedModels } from '../upstream-models.js';
import {
  pageQuery,
  parseWith,
  planCreateBody,
  planParams,
  planPatchBody,
  planPutBody,
} from '../http/schemas.js';
import { deletePlan, getPlan, insertPlan, listPlans, tenantsOnPlan, updatePlan } from '../stores/plans.js';
import { admin } from '../http/openapi.js';

/** Strips the id and timestamps from a plan view, leaving the proxy shape. */
function bodyOf(view: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, created_at: _c, updated_at: _u, ...body } = view;
  return body;
}

export function registerPlanRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.post<{ Body: { id: string } & Record<string, unknown> }>(
    '/v1/plans',
    { schema: { body: planCreateBody }, config: admin('Create a plan', { 201: 'The plan' }) },
    async (request, reply) => {
      const { id, ...fields } = request.body;
      const plan: PlanConfig = parseWith(planSchema, fields, 'body');
      requireServedModels(deps.config.upstreamModels, plan.models, 'body.models', `plan "${id}"`);
      const created = await commitChange(deps, actorOf(request), async (db) => {
        const row = await insertPlan(db, id, plan);
        if (!row) throw new ConflictError(`plan "${id}" already exists`);
        return {
          result: row,
          audit: { action: 'plan.create', resource: `plans/${id}`, after: plan },
          affectsConfig: true,
        };
      });
      return reply.code(201).send(created);
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/plans',
    { schema: { querystring: pageQuery }, config: admin('List plans') },
    async (request) => {
      const { limit, cursor } = request.query;
      const rows = await listPlans(deps.pool, {
        limit: limit + 1,
        after: decodeCursor<string>(cursor, 'string'),
      });
      return pageOf(rows, limit, (p) => p.id);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/plans/:id',
    { schema: { params: planParams }, config: admin('Read a plan') },
    async (request) => {
      const plan = await getPlan(deps.pool, request.params.id);
      if (!plan) throw new NotFoundError(`plan "${request.params.id}" does not exist`);
      return plan;
    },
  );

  app.put<{ Params: { id: string }; Body: Record<string, unknown> }>(
    '/v1/plans/:id',
    {
      schema: { params: planParams, body: planPutBody },
      config: admin('Create a plan, or replace it whole', { 200: 'Replaced', 201: 'Created' }),
    },
    async (request, reply) => {
      const { id } = request.params;
      const plan: PlanConfig = parseWith(planSchema, request.body, 'body');
      requireServedModels(deps.config.upstreamModels, plan.models, 'body.models', `plan "${id}"`);
      let created = false;
      const result = await commitChange(deps, actorOf(request), async (db) => {
        const before = await getPlan(db, id, true);
        if (!before) {
          // A concurrent PUT may insert between the read and this insert: that one wins, this one is a 409.
          const row = await insertPlan(db, id, plan);
          if (!row) throw new ConflictError(`plan "${id}" was created concurrently; retry`);
          created = true;
          return {
            result: row,
            audit: { action: 'plan.create', resource: `plans/${id}`, after: plan },
            affectsConfig: true,
          };
        }
        const after = await updatePlan(db, id, plan);
        return {
          result: after,
          audit: { action: 'plan.update', resource: `plans/${id}`, before: bodyOf(before), after: plan },
          affectsConfig: true,
        };
      });
      return reply.code(created ? 201 : 200).send(result);
    },
  );

  app.patch<{ Params: { id: string }; Body: Record<string, unknown> }>(
    '/v1/plans/:id',
    {
      schema: { params: planParams, body: planPatchBody },
      config: admin('Update a plan (top-level fields)'),
    },
    async (request) => {
      const { id } = request.params;
      return commitChange(deps, actorOf(request), async (db) => {
        const before = await getPlan(db, id, true);
        if (!before) throw new NotFoundError(`plan "${id}" does not exist`);
        const merged: PlanConfig = parseWith(planSchema, { ...bodyOf(before), ...request.body }, 'body');
        requireServedModels(deps.config.upstreamModels, merged.models, 'body.models', `plan "${id}"`);
        const after = await updatePlan(db, id, merged);
        return {
          result: after,
          audit: { action: 'plan.update', resource: `plans/${id}`, before: bodyOf(before), after: merged },
          affectsConfig: true,
        };
      });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/plans/:id',
    { schema: { params: planParams }, config: admin('Delete a plan no tenant uses', { 204: 'Deleted' }) },
    async (request, reply) => {
      const { id } = request.params;
      await commitChange(deps, actorOf(request), async (db) => {
        const before = await getPlan(db, id, true);
        if (!before) throw new NotFoundError(`plan "${id}" does not exist`);
        const users = await tenantsOnPlan(db, id);
        if (users > 0)
          throw new ConflictError(
            `plan "${id}" is used by ${users} tenant(s): move them to another plan first`,
          );
        await deletePlan(db, id);
        return {
          result: undefined,
          audit: { action: 'plan.delete', resource: `plans/${id}`, before: bodyOf(before) },
          affectsConfig: true,
        };
      });
      return reply.code(204).send();
    },
  );
}
