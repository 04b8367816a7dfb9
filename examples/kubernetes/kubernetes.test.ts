/**
 * The Kubernetes example parses as multi-document YAML, its embedded Lanekeeper config is
 * one the proxy accepts, and the pod is wired as documented: the app reaches the sidecar
 * on localhost, probes hit the proxy's admin port, and the provider key only reaches the
 * proxy container.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseYamlConfig } from '../../proxy/src/config/load.js';
import { parseConfig } from '../../proxy/src/config/schema.js';

interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  readinessProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { template?: { spec: { containers: Container[] } }; ports?: { targetPort: string }[] };
}

const text = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'support-bot.yaml'), 'utf8');
const docs = parseAllDocuments(text);
const manifests = docs.map((d) => d.toJS() as Manifest);
const byKind = (kind: string) => manifests.find((m) => m.kind === kind);

describe('examples/kubernetes/support-bot.yaml', () => {
  it('parses as YAML without errors into a Secret, ConfigMap, Deployment and Service', () => {
    expect(docs.flatMap((d) => d.errors)).toEqual([]);
    expect(manifests.map((m) => m.kind)).toEqual(['Secret', 'ConfigMap', 'Deployment', 'Service']);
  });

  it('carries a Lanekeeper config the proxy accepts, listening on localhost only', () => {
    const raw = parseYamlConfig(byKind('ConfigMap')?.data?.['config.yaml'] ?? '', {
      OPENAI_API_KEY: 'sk-test',
      LANEKEEPER_METRICS_TOKEN: 'metrics-token-0123456789abcdef',
    });
    const config = parseConfig(raw);
    expect(config.listen).toBe('127.0.0.1:8080');
    expect(config.admin_listen).toBe('0.0.0.0:9464');
    expect(config.upstream.headers.authorization).toBe('Bearer sk-test');
    expect(config.tenants.map((t) => `${t.id}:${t.plan}`)).toEqual(['acme:pro', 'globex:free']);
  });

  const containers = byKind('Deployment')?.spec?.template?.spec.containers ?? [];
  const app = containers.find((c) => c.name === 'support-bot');
  const proxy = containers.find((c) => c.name === 'lanekeeper-proxy');

  it('points the app at the sidecar on localhost, and nothing else changes in its env', () => {
    expect(app?.env?.find((e) => e.name === 'LLM_BASE_URL')?.value).toBe('http://127.0.0.1:8080/v1');
    expect(app?.env?.some((e) => e.name === 'OPENAI_API_KEY')).toBe(false);
    expect(proxy?.env?.some((e) => e.name === 'OPENAI_API_KEY')).toBe(true);
  });

  it('probes the proxy on its admin port: /readyz and /healthz', () => {
    expect(proxy?.ports).toContainEqual({ name: 'admin', containerPort: 9464 });
    expect(proxy?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(proxy?.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(proxy?.volumeMounts?.map((m) => m.mountPath)).toEqual(['/etc/lanekeeper', '/var/lib/lanekeeper']);
  });
});
