/**
 * GET /docs: Swagger UI over the generated /openapi.json, served entirely by the control
 * plane from the `swagger-ui-dist` package (maintained by SmartBear, the Swagger UI project
 * itself), so it works on a network with no internet. Only the files the page loads are
 * served, each by name; nothing else of the package (or of the disk) can be asked for.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { errorBody } from '../errors.js';

const DIST = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

// The page's own script lives in a file: the CSP allows no inline script.
const INIT = `window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lanekeeper control plane API</title>
<link rel="icon" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/docs-init.js"></script>
</body>
</html>
`;

// Swagger UI sets inline styles and shows data: images; scripts and requests stay on this origin.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export function registerDocsViewer(app: FastifyInstance): void {
  const files = new Map<string, Buffer>();
  const load = (name: string): Buffer => {
    let bytes = files.get(name);
    if (!bytes) {
      bytes = readFileSync(join(DIST, name));
      files.set(name, bytes);
    }
    return bytes;
  };
  const secure = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff' };

  app.get('/docs', { config: { hide: true } }, async (_request, reply) =>
    reply.headers({ ...secure, 'content-type': 'text/html; charset=utf-8' }).send(PAGE),
  );
  app.get('/docs/docs-init.js', { config: { hide: true } }, async (_request, reply) =>
    reply.headers({ ...secure, 'content-type': 'text/javascript; charset=utf-8' }).send(INIT),
  );
  app.get<{ Params: { file: string } }>('/docs/:file', { config: { hide: true } }, async (request, reply) => {
    const type = Object.hasOwn(ASSETS, request.params.file) ? ASSETS[request.params.file] : undefined;
    if (!type) {
      return reply.code(404).send(errorBody('CP_ERR_NOT_FOUND', 'No such file.'));
    }
    return reply
      .headers({ ...secure, 'content-type': type, 'cache-control': 'public, max-age=86400' })
      .send(load(request.params.file));
  });
}
