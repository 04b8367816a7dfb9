/**
 * The tenant-scoped Qdrant route (`vector` in the config): requests under its path prefix
 * are answered by the vector route, which confines them to the tenant's own collections or
 * partition, instead of going to the AI upstream. Runs after identity and limits, so the
 * tenant is known and its request limits apply.
 */
import type { Stage } from '../stage.js';
import { CONTINUE } from '../stage.js';
import type { VectorRoute } from '../vector/vector-route.js';

export function createRouteVectorStage(deps: { vector(): VectorRoute | undefined }): Stage {
  return {
    name: 'route-vector',
    async onRequest(ctx) {
      const route = deps.vector();
      const tenant = ctx.tenant;
      if (!route || !tenant || !route.matches(ctx.request.path)) return CONTINUE;
      const response = await route.handle(
        { id: tenant.id, features: tenant.plan.features },
        {
          method: ctx.request.method,
          path: route.stripPrefix(ctx.request.path),
          query: ctx.request.query,
          headers: ctx.clientHeaders,
          body: ctx.rawBody,
          maxJsonDepth: ctx.runtime.config.max_json_depth,
        },
      );
      return { response };
    },
  };
}
