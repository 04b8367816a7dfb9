/** GET /v1/audit: the audit log, newest first, paginated, filterable by resource, action, tenant and actor. */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { decodeCursor, pageOf } from '../http/cursor.js';
import { auditQuery } from '../http/schemas.js';
import { listAudit } from '../stores/audit.js';

export function registerAuditRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.get<{
    Querystring: {
      limit: number;
      cursor?: string;
      resource?: string;
      action?: string;
      tenant?: string;
      actor?: string;
    };
  }>(
    '/v1/audit',
    { schema: { querystring: auditQuery }, config: { auth: 'admin', summary: 'Read the audit log' } },
    async (request) => {
      const { limit, cursor, resource, action, tenant, actor } = request.query;
      const rows = await listAudit(deps.pool, {
        limit: limit + 1,
        before: decodeCursor<number>(cursor, 'number'),
        resource,
        action,
        tenant,
        actor,
      });
      return pageOf(rows, limit, (r) => r.id);
    },
  );
}
