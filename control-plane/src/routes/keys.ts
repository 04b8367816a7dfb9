/**
 * API keys: POST/GET /v1/tenants/{id}/keys and DELETE /v1/tenants/{id}/keys/{keyId}.
 * The key is in the POST response and nowhere else; the audit log records only its id
 * and display prefix. Revocation removes the hash from the next config version.
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { commitChange } from '../changes.js';
import { NotFoundError } from '../errors.js';
import { actorOf } from '../http/auth.js';
import { keyParams, tenantParams } from '../http/schemas.js';
import { generateKey, getKey, insertKey, listKeys, revokeKey } from '../stores/api-keys.js';
import { getTenant } from '../stores/tenants.js';
import type { Db } from '../stores/postgres.js';
import { admin } from '../http/openapi.js';

async function requireTenant(db: Db, id: string, lock = false): Promise<void> {
  if (!(await getTenant(db, id, lock))) throw new NotFoundError(`tenant "${id}" does not exist`);
}

export function registerKeyRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.post<{ Params: { id: string } }>(
    '/v1/tenants/:id/keys',
    {
      schema: { params: tenantParams },
      config: admin('Issue an API key (returned once)', { 201: 'The key, shown this once' }),
    },
    async (request, reply) => {
      const { id } = request.params;
      const { id: keyId, key } = generateKey();
      const view = await commitChange(deps, actorOf(request), async (db) => {
        await requireTenant(db, id, true);
        const row = await insertKey(db, id, keyId, key);
        return {
          result: row,
          audit: {
            action: 'key.create',
            resource: `tenants/${id}/keys/${keyId}`,
            after: { prefix: row.prefix },
          },
          affectsConfig: true,
        };
      });
      return reply.code(201).send({ ...view, key });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/tenants/:id/keys',
    { schema: { params: tenantParams }, config: admin("List a tenant's keys (never the keys themselves)") },
    async (request) => {
      await requireTenant(deps.pool, request.params.id);
      return { items: await listKeys(deps.pool, request.params.id) };
    },
  );

  app.delete<{ Params: { id: string; keyId: string } }>(
    '/v1/tenants/:id/keys/:keyId',
    { schema: { params: keyParams }, config: admin('Revoke a key') },
    async (request) => {
      const { id, keyId } = request.params;
      return commitChange(deps, actorOf(request), async (db) => {
        await requireTenant(db, id);
        const before = await getKey(db, id, keyId);
        if (!before) throw new NotFoundError(`tenant "${id}" has no key "${keyId}"`);
        const after = await revokeKey(db, id, keyId);
        return {
          result: after,
          audit: { action: 'key.revoke', resource: `tenants/${id}/keys/${keyId}`, before, after },
          affectsConfig: before.revoked_at === null,
        };
      });
    },
  );
}
