/**
 * docker-compose.yml, checked without a Docker engine: it validates against the Compose
 * specification's JSON schema (the copy dclint ships and keeps current), dclint's own
 * rules find no error, and the start order is real: every depends_on names a service that
 * exists and has a health check, so `docker compose up` waits for each dependency.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import { DCLinter } from 'dclint';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../control-plane/src/config.js';
import { parseYamlConfig } from '../../proxy/src/config/load.js';
import { parseConfig } from '../../proxy/src/config/schema.js';
import { REPO_ROOT, readYaml } from './chart.js';

interface Service {
  image?: string;
  build?: { context: string; target: string };
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] | string };
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
}

const require = createRequire(import.meta.url);
const composeSchemaPath = join(
  dirname(require.resolve('dclint/package.json')),
  'schemas',
  'compose.schema.json',
);
// The published schema declares draft-07 by its https URL, which ajv registers under the
// http one; the declaration is checked below and dropped before compiling. The schema is not
// ours to make strict.
const { $schema: declaredDraft, ...composeSchema } = JSON.parse(readFileSync(composeSchemaPath, 'utf8')) as {
  $schema: string;
};
const validateCompose = new Ajv({ allErrors: true, strict: false }).compile(composeSchema);
const compose = readYaml('docker-compose.yml') as { services: Record<string, Service> };
const services = compose.services;

describe('docker-compose.yml', () => {
  it('validates against the Compose specification schema', () => {
    expect(declaredDraft).toMatch(/draft-07/);
    expect(validateCompose(compose), JSON.stringify(validateCompose.errors)).toBe(true);
  });

  it('would be rejected by that schema if a service had a misspelt key (the check has teeth)', () => {
    const broken = structuredClone(compose) as { services: Record<string, Record<string, unknown>> };
    (broken.services.proxy as Record<string, unknown>).depend_on = ['redis'];
    expect(validateCompose(broken)).toBe(false);
  });

  it('has no errors under dclint', () => {
    const linter = new DCLinter({ rules: {}, quiet: true, debug: false, exclude: [] });
    // dclint's bundled .d.ts files use extensionless imports that NodeNext cannot follow.
    const results = linter.lintFiles([join(REPO_ROOT, 'docker-compose.yml')], false) as {
      messages: { type: string; line: number; message: string }[];
    }[];
    const errors = results.flatMap((r) =>
      r.messages.filter((m) => m.type === 'error').map((m) => `${m.line}: ${m.message}`),
    );
    expect(errors).toEqual([]);
  });

  it('runs the whole stack: stores, control plane, proxy, demo upstream and Prometheus', () => {
    expect(Object.keys(services).sort()).toEqual([
      'control-plane',
      'postgres',
      'prometheus',
      'proxy',
      'qdrant',
      'redis',
      'upstream',
    ]);
    expect(services.qdrant?.image).toBe('qdrant/qdrant:v1.19.0');
    expect(services.proxy?.build?.target).toBe('proxy');
    expect(services['control-plane']?.build?.target).toBe('control-plane');
  });

  it.each(Object.entries(services))('%s has a health check', (_name, service) => {
    expect(service.healthcheck?.test).toBeDefined();
  });

  it.each(Object.entries(services).filter(([, s]) => s.depends_on))(
    '%s waits for dependencies that exist, are healthy, and have health checks',
    (_name, service) => {
      for (const [target, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(services[target], `depends_on ${target}`).toBeDefined();
        expect(condition).toBe('service_healthy');
        expect(services[target]?.healthcheck).toBeDefined();
      }
    },
  );

  it('comes up in order: stores, then the control plane, then the proxy, then Prometheus', () => {
    const order: string[] = [];
    const visit = (name: string, path: string[]) => {
      expect(path, 'depends_on cycle').not.toContain(name);
      for (const dep of Object.keys(services[name]?.depends_on ?? {})) visit(dep, [...path, name]);
      if (!order.includes(name)) order.push(name);
    };
    for (const name of Object.keys(services).sort()) visit(name, []);
    const at = (name: string) => order.indexOf(name);
    for (const store of ['postgres', 'redis', 'qdrant']) expect(at(store)).toBeLessThan(at('control-plane'));
    expect(at('control-plane')).toBeLessThan(at('proxy'));
    expect(at('upstream')).toBeLessThan(at('proxy'));
    expect(at('proxy')).toBeLessThan(at('prometheus'));
  });

  it('migrates the database before the control plane starts serving', () => {
    const command = (services['control-plane'] as { command?: string[] }).command?.join(' ') ?? '';
    expect(command).toMatch(/lanekeeper\.js migrate && exec node proxy\/bin\/lanekeeper\.js control-plane/);
  });

  it('gives proxy and control plane the same proxy token, distinct from the admin token', () => {
    const cp = services['control-plane']?.environment ?? {};
    expect(services.proxy?.environment?.LANEKEEPER_PROXY_TOKEN).toBe(cp.LANEKEEPER_PROXY_TOKEN);
    expect(cp.LANEKEEPER_PROXY_TOKEN).not.toBe(cp.LANEKEEPER_ADMIN_TOKEN);
    for (const name of [
      'DATABASE_URL',
      'REDIS_URL',
      'QDRANT_URL',
      'LANEKEEPER_ADMIN_TOKEN',
      'LANEKEEPER_PROXY_TOKEN',
    ]) {
      expect(cp[name], name).toBeTruthy();
    }
  });

  it('gives the proxy container no credential of the control plane admin API, only its own admin token', () => {
    const filled = (environment: Record<string, string> | undefined) =>
      Object.fromEntries(
        Object.entries(environment ?? {}).map(([k, v]) => [
          k,
          String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1'),
        ]),
      );
    const proxyEnv = filled(services.proxy?.environment);
    const cpAdmin = filled(services['control-plane']?.environment).LANEKEEPER_ADMIN_TOKEN;
    expect(cpAdmin).toBeTruthy();
    expect(Object.keys(proxyEnv)).not.toContain('LANEKEEPER_ADMIN_TOKEN');
    expect(Object.values(proxyEnv)).not.toContain(cpAdmin);
    // What the proxy really loads from its mounted config with that environment.
    const config = parseConfig(
      parseYamlConfig(readFileSync(join(REPO_ROOT, 'deploy/proxy.compose.yaml'), 'utf8'), proxyEnv),
    );
    expect(config.admin_token).toBe(proxyEnv.LANEKEEPER_PROXY_ADMIN_TOKEN);
    expect(config.admin_token).not.toBe(cpAdmin);
    expect(config.control_plane?.token).toBe(proxyEnv.LANEKEEPER_PROXY_TOKEN);
  });

  it('gives Prometheus the metrics token the proxy checks, from one variable', () => {
    const configs = (compose as unknown as { configs: Record<string, { content: string }> }).configs;
    const proxyToken = services.proxy?.environment?.LANEKEEPER_METRICS_TOKEN;
    expect(proxyToken).toMatch(/^\$\{LANEKEEPER_METRICS_TOKEN:-.+\}$/);
    expect(configs['metrics-token']?.content).toBe(proxyToken);
    const mounted = (services.prometheus as { configs?: { source: string; target: string }[] }).configs;
    const prometheus = readYaml('deploy/prometheus.yml') as {
      scrape_configs: {
        job_name: string;
        authorization?: { credentials_file?: string; credentials?: string };
      }[];
    };
    const proxyJob = prometheus.scrape_configs.find((job) => job.job_name === 'lanekeeper-proxy');
    expect(proxyJob?.authorization).toEqual({ credentials_file: '/etc/prometheus/metrics-token' });
    expect(mounted).toContainEqual({ source: 'metrics-token', target: '/etc/prometheus/metrics-token' });
  });

  it('passes the upstream URL and key a real provider needs into the proxy container', () => {
    const env = services.proxy?.environment ?? {};
    expect(env.LANEKEEPER_UPSTREAM_URL).toBe('${LANEKEEPER_UPSTREAM_URL:-http://upstream:8000}');
    expect(env.OPENAI_API_KEY).toBe('${OPENAI_API_KEY:-}');
  });

  it('gives the control plane an environment its own config loader accepts (compose defaults filled in)', () => {
    const env = Object.fromEntries(
      Object.entries(services['control-plane']?.environment ?? {}).map(([k, v]) => [
        k,
        String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1'),
      ]),
    );
    const config = loadConfig(env);
    expect(config.port).toBe(8081);
    expect(config.qdrant?.url).toBe('http://qdrant:6333');
    expect(config.collectionTemplates).toEqual([{ name: 'documents', size: 1536, distance: 'Cosine' }]);
  });

  it('runs the demo upstream on all interfaces of its container, so the proxy container reaches it', () => {
    expect(services.upstream?.environment).toMatchObject({ HOST: '0.0.0.0', PORT: '8000' });
    expect(readYaml('deploy/proxy.compose.yaml')).toMatchObject({
      upstream: { url: '${LANEKEEPER_UPSTREAM_URL:-http://upstream:8000}' },
    });
  });

  it('mounts the proxy config and publishes admin ports on loopback only', () => {
    expect(services.proxy?.volumes).toContain('./deploy/proxy.compose.yaml:/etc/lanekeeper/config.yaml:ro');
    for (const service of Object.values(services)) {
      for (const port of service.ports ?? []) expect(port).toMatch(/^127\.0\.0\.1:/);
    }
  });
});
