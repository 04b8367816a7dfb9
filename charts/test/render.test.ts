/**
 * Renders the chart with the small Go-template renderer (go-template-render.ts) for the
 * defaults and each ci/ values file, then checks the manifests a cluster would get: every
 * document parses, the proxy ConfigMap holds a config the proxy accepts, selectors match
 * pod labels, probes and Services point at ports that exist, the HPA carries the designed
 * numbers, secrets and hooks line up. `helm template` remains the reference where Helm exists.
 */
import { describe, expect, it } from 'vitest';
import { parseYamlConfig } from '../../proxy/src/config/load.js';
import { loadConfig, loadMigrateConfig } from '../../control-plane/src/config.js';
import { parseConfig } from '../../proxy/src/config/schema.js';
import { readYaml, type Tree } from './chart.js';
import { RenderError } from './go-template-render.js';
import { parse } from 'yaml';
import { renderChart as renderWholeChart, renderFromParent } from './render-chart.js';

interface Container {
  name: string;
  ports?: { name: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  readinessProbe?: { httpGet?: { path: string; port: string } };
  livenessProbe?: { httpGet?: { path: string; port: string } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown> & {
    selector?: Record<string, string> & { matchLabels?: Record<string, string> };
    template?: {
      metadata: { labels: Record<string, string> };
      spec: { containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[] };
    };
    ports?: { name: string; targetPort: string; port: number }[];
  };
  data?: Record<string, string>;
}

/** What the proxy Secret puts in the proxy container's environment. */
const ADMIN_ENV = {
  LANEKEEPER_ADMIN_TOKEN: 'admin-token-from-secret-0123',
  LANEKEEPER_METRICS_TOKEN: 'metrics-token-from-secret-0123',
};

const chart = readYaml('charts/lanekeeper/Chart.yaml') as {
  name: string;
  version: string;
  appVersion: string;
};

/** The chart's manifests and NOTES.txt; this file's Manifest names more of the parsed fields it reads. */
const renderChart = (override: Tree = {}) =>
  renderWholeChart(override) as { manifests: Manifest[]; notes: string };

const cases: [string, Tree][] = [
  ['defaults', {}],
  ['ci/gateway-values.yaml', readYaml('charts/lanekeeper/ci/gateway-values.yaml') as Tree],
  ['ci/sidecar-values.yaml', readYaml('charts/lanekeeper/ci/sidecar-values.yaml') as Tree],
  ['ci/standalone-values.yaml', readYaml('charts/lanekeeper/ci/standalone-values.yaml') as Tree],
];

const find = (manifests: Manifest[], kind: string, name: string) =>
  manifests.find((m) => m.kind === kind && m.metadata.name === name);
const subset = (small: Record<string, string> = {}, big: Record<string, string> = {}) =>
  Object.entries(small).every(([k, v]) => big[k] === v);

describe.each(cases)('the chart rendered with %s', (_name, override) => {
  const { manifests, notes } = renderChart(override);

  it('renders well-formed manifests with names and the standard labels', () => {
    expect(manifests.length).toBeGreaterThan(5);
    for (const m of manifests) {
      expect(m.apiVersion).toBeTruthy();
      expect(m.metadata.name.length).toBeGreaterThan(0);
      expect(m.metadata.name.length).toBeLessThanOrEqual(63);
      expect(m.metadata.labels?.['app.kubernetes.io/instance']).toBe('lk');
      expect(m.metadata.labels?.['helm.sh/chart']).toBe(`lanekeeper-${chart.version}`);
    }
  });

  it('selects pods by labels their templates carry, and routes Services to named ports that exist', () => {
    const pods = manifests.filter((m) => m.kind === 'Deployment');
    for (const deployment of pods) {
      expect(subset(deployment.spec?.selector?.matchLabels, deployment.spec?.template?.metadata.labels)).toBe(
        true,
      );
    }
    for (const svc of manifests.filter((m) => m.kind === 'Service')) {
      const target = pods.find((d) =>
        subset(svc.spec?.selector as Record<string, string>, d.spec?.template?.metadata.labels),
      );
      expect(target, svc.metadata.name).toBeDefined();
      const portNames = target?.spec?.template?.spec.containers.flatMap(
        (c) => c.ports?.map((p) => p.name) ?? [],
      );
      for (const port of svc.spec?.ports ?? []) expect(portNames).toContain(port.targetPort);
    }
    for (const pdb of manifests.filter((m) => m.kind === 'PodDisruptionBudget')) {
      expect(
        pods.some((d) => subset(pdb.spec?.selector?.matchLabels, d.spec?.template?.metadata.labels)),
      ).toBe(true);
    }
  });

  it('probes every Lanekeeper container on a port it declares', () => {
    for (const deployment of manifests.filter((m) => m.kind === 'Deployment')) {
      for (const c of deployment.spec?.template?.spec.containers ?? []) {
        if (!c.name.startsWith('lanekeeper') && c.name !== 'control-plane') continue;
        const names = c.ports?.map((p) => p.name);
        expect(names).toContain(c.readinessProbe?.httpGet?.port);
        expect(names).toContain(c.livenessProbe?.httpGet?.port);
        expect([c.readinessProbe?.httpGet?.path, c.livenessProbe?.httpGet?.path]).toEqual([
          '/readyz',
          '/healthz',
        ]);
      }
    }
  });

  it('gives the proxy a config file the proxy accepts, mounted where the image reads it', () => {
    const configMap = find(manifests, 'ConfigMap', 'lk-lanekeeper-proxy');
    const config = parseConfig(
      parseYamlConfig(configMap?.data?.['config.yaml'] ?? '', {
        ...ADMIN_ENV,
        LANEKEEPER_PROXY_TOKEN: 'proxy-token-from-secret',
        UPSTREAM_API_KEY: 'k',
      }),
    );
    expect(config.listen).toBe('0.0.0.0:8080');
    expect(config.admin_listen).toBe('0.0.0.0:9464');
    const proxy = find(manifests, 'Deployment', 'lk-lanekeeper-proxy');
    const container = proxy?.spec?.template?.spec.containers.find((c) => c.name === 'lanekeeper-proxy');
    expect(container?.volumeMounts).toContainEqual({
      name: 'lanekeeper-config',
      mountPath: '/etc/lanekeeper',
      readOnly: true,
    });
    expect(proxy?.spec?.template?.spec.volumes).toContainEqual({
      name: 'lanekeeper-config',
      configMap: { name: 'lk-lanekeeper-proxy' },
    });
  });

  it('says in NOTES how to reach the proxy, and scrapes /metrics with the token it needs', () => {
    expect(notes).toContain('http://lk-lanekeeper-proxy.ai.svc:80');
    const scrape = notes.split('\n').find((line) => line.includes('/metrics'));
    expect(scrape).toContain('authorization: Bearer $METRICS_TOKEN');
    expect(notes).toMatch(
      /METRICS_TOKEN=\$\(kubectl .* get secret \S+ -o jsonpath='\{\.data\.[\w-]+\}' \| base64 -d\)/,
    );
  });
});

describe('rendered details', () => {
  it('the HPA carries the designed defaults', () => {
    const hpa = find(renderChart().manifests, 'HorizontalPodAutoscaler', 'lk-lanekeeper-proxy');
    expect(hpa?.apiVersion).toBe('autoscaling/v2');
    expect(hpa?.spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'lk-lanekeeper-proxy' },
      minReplicas: 3,
      maxReplicas: 100,
      metrics: [
        {
          type: 'Pods',
          pods: {
            metric: { name: 'requests_per_second' },
            target: { type: 'AverageValue', averageValue: '50' },
          },
        },
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
        },
      ],
      behavior: {
        scaleUp: {
          stabilizationWindowSeconds: 60,
          selectPolicy: 'Max',
          policies: [{ type: 'Pods', value: 10, periodSeconds: 60 }],
        },
        scaleDown: {
          stabilizationWindowSeconds: 300,
          selectPolicy: 'Max',
          policies: [{ type: 'Pods', value: 2, periodSeconds: 120 }],
        },
      },
    });
    expect(
      find(renderChart().manifests, 'Deployment', 'lk-lanekeeper-proxy')?.spec?.replicas,
    ).toBeUndefined();
  });

  it('gateway mode fronts the upstream URL and points the proxy at the in-cluster control plane and Redis', () => {
    const { manifests } = renderChart();
    const raw = parseYamlConfig(
      find(manifests, 'ConfigMap', 'lk-lanekeeper-proxy')?.data?.['config.yaml'] ?? '',
      {
        ...ADMIN_ENV,
        LANEKEEPER_PROXY_TOKEN: 't',
      },
    );
    expect(raw).toMatchObject({
      upstream: { url: 'http://ai-backend:8000' },
      control_plane: { url: 'http://lk-lanekeeper-control-plane:8081', token: 't' },
      store: { redis: 'redis://redis:6379', key_prefix: 'lk:' },
    });
    const env = find(manifests, 'Deployment', 'lk-lanekeeper-proxy')?.spec?.template?.spec.containers[0]?.env;
    expect(env).toContainEqual({
      name: 'LANEKEEPER_PROXY_TOKEN',
      valueFrom: { secretKeyRef: { name: 'lk-lanekeeper-secrets', key: 'proxy-token' } },
    });
  });

  it('sidecar mode puts the backend in the proxy pod and the proxy in front of it on localhost', () => {
    const { manifests } = renderChart(readYaml('charts/lanekeeper/ci/sidecar-values.yaml') as Tree);
    const pod = find(manifests, 'Deployment', 'lk-lanekeeper-proxy')?.spec?.template?.spec;
    expect(pod?.containers.map((c) => c.name)).toEqual(['lanekeeper-proxy', 'backend']);
    const raw = parseYamlConfig(
      find(manifests, 'ConfigMap', 'lk-lanekeeper-proxy')?.data?.['config.yaml'] ?? '',
      {
        ...ADMIN_ENV,
        LANEKEEPER_PROXY_TOKEN: 't',
      },
    );
    expect(raw).toMatchObject({ upstream: { url: 'http://127.0.0.1:8000' } });
    expect(find(manifests, 'Service', 'lk-lanekeeper-proxy')?.spec?.ports).toEqual([
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
    ]);
  });

  it("hardens the sidecar backend container by default, and takes the operator's own context", () => {
    const sidecar = readYaml('charts/lanekeeper/ci/sidecar-values.yaml') as Tree;
    const backendOf = (override: Tree) =>
      (
        find(renderChart(override).manifests, 'Deployment', 'lk-lanekeeper-proxy')?.spec?.template?.spec
          .containers as (Container & { securityContext?: Record<string, unknown> })[]
      ).find((c) => c.name === 'backend');
    expect(backendOf(sidecar)?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    const restricted = {
      runAsNonRoot: true,
      runAsUser: 10001,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    };
    const backend = (sidecar.sidecar as { backend: Tree }).backend;
    expect(
      backendOf({ ...sidecar, sidecar: { backend: { ...backend, securityContext: restricted } } })
        ?.securityContext,
    ).toEqual(restricted);
  });

  it('with existingSecret, every secret reference uses it and the chart creates none', () => {
    const { manifests } = renderChart(readYaml('charts/lanekeeper/ci/sidecar-values.yaml') as Tree);
    expect(manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
    const refs = manifests.flatMap((m) =>
      (m.spec?.template?.spec.containers ?? []).flatMap(
        (c) => c.env?.flatMap((e) => e.valueFrom?.secretKeyRef?.name ?? []) ?? [],
      ),
    );
    expect(refs.length).toBeGreaterThanOrEqual(4);
    expect(new Set(refs)).toEqual(new Set(['lanekeeper-credentials']));
  });

  it.each([
    ['the defaults', {}],
    ['sidecar-values.yaml', readYaml('charts/lanekeeper/ci/sidecar-values.yaml') as Tree],
    ['gateway-values.yaml', readYaml('charts/lanekeeper/ci/gateway-values.yaml') as Tree],
  ])("never gives a proxy container the control plane's admin token, with %s", (_name, override) => {
    const { manifests } = renderChart(override);
    const refsOf = (name: string) =>
      (find(manifests, 'Deployment', name)?.spec?.template?.spec.containers ?? []).flatMap(
        (c) => c.env?.flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : [])) ?? [],
      );
    const admin = find(
      manifests,
      'Deployment',
      'lk-lanekeeper-control-plane',
    )?.spec?.template?.spec.containers[0]?.env?.find((e) => e.name === 'LANEKEEPER_ADMIN_TOKEN')?.valueFrom
      ?.secretKeyRef;
    expect(admin).toBeDefined();
    const proxyRefs = refsOf('lk-lanekeeper-proxy');
    expect(proxyRefs.length).toBeGreaterThanOrEqual(2);
    expect(proxyRefs).not.toContainEqual(admin);
  });

  it("refuses one Secret for both services when a proxy key is the control plane's admin token", () => {
    const shared = (proxyKeys: Tree): Tree => ({
      controlPlane: { existingSecret: 'shared' },
      proxy: { existingSecret: 'shared', secretKeys: proxyKeys },
    });
    for (const keys of [{}, { metricsToken: 'admin-token', adminToken: 'proxy-admin-token' }]) {
      expect(() => renderChart(shared(keys))).toThrow(/admin rights over every tenant/);
    }
    expect(() => renderChart(shared({ adminToken: 'proxy-admin-token' }))).not.toThrow();
  });

  it('names the Secrets this chart creates when a parent chart includes the sidecar container', () => {
    const created = renderChart()
      .manifests.filter((m) => m.kind === 'Secret')
      .map((m) => m.metadata.name);
    const text = renderFromParent(
      [
        'containers:',
        '  - name: app',
        '    image: my-app',
        '  {{- include "lanekeeper.sidecarContainer" (dict "root" . "values" .Values.lanekeeper) | nindent 2 }}',
      ].join('\n'),
      {},
      'lk',
    );
    const pod = parse(text) as { containers: Container[] };
    const refs = pod.containers[1]!.env!.flatMap((e) => e.valueFrom?.secretKeyRef?.name ?? []);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    for (const name of refs) expect(created).toContain(name);
    // The parent's own name is in none of them (it was: lk-support-bot-secrets).
    expect(refs.join()).not.toContain('support-bot');
  });

  it('rolls the proxy pods when a setting the proxy reads only at start changes, and only then', () => {
    const checksum = (override: Tree) =>
      (
        find(renderChart(override).manifests, 'Deployment', 'lk-lanekeeper-proxy')?.spec
          ?.template as unknown as {
          metadata: { annotations: Record<string, string> };
        }
      ).metadata.annotations['checksum/start-settings'];
    const before = checksum({});
    expect(before).toMatch(/^[0-9a-f]{64}$/);
    for (const changed of [
      { redis: { url: 'redis://other-redis:6379' } },
      { redis: { keyPrefix: 'other:' } },
      { proxy: { port: 8088 } },
      { proxy: { config: { server: { max_connections: 500 } } } },
      { proxy: { config: { telemetry: { otlp_endpoint: 'http://collector:4318' } } } },
      { proxy: { config: { on_store_error: 'fail_closed' } } },
    ] as Tree[]) {
      expect(checksum(changed)).not.toBe(before);
    }
    // What the proxy reloads live leaves the pods be.
    expect(checksum({ proxy: { config: { log: { level: 'debug' } } } })).toBe(before);
    expect(checksum({ proxy: { upstream: { timeoutMs: 1000 } } })).toBe(before);
  });

  it.each([
    ['the autoscaler', { redis: { url: '' }, controlPlane: { enabled: false } }],
    [
      'two replicas',
      {
        redis: { url: '' },
        controlPlane: { enabled: false },
        proxy: { autoscaling: { enabled: false }, replicaCount: 2 },
      },
    ],
  ] as [string, Tree][])(
    'refuses in-memory limits with %s: each replica would grant them again',
    (_what, override) => {
      expect(() => renderChart(override)).toThrow(/per replica/);
    },
  );

  it('renders in-memory limits on one replica, and a store given in proxy.config with several', () => {
    const one: Tree = {
      redis: { url: '' },
      controlPlane: { enabled: false },
      proxy: { autoscaling: { enabled: false }, replicaCount: 1 },
    };
    expect(find(renderChart(one).manifests, 'Deployment', 'lk-lanekeeper-proxy')?.spec?.replicas).toBe(1);
    // `store: memory` written out is the same in-memory store.
    expect(() =>
      renderChart({
        redis: { url: '' },
        controlPlane: { enabled: false },
        proxy: { config: { store: 'memory' } },
      }),
    ).toThrow(/per replica/);
    expect(() =>
      renderChart({
        redis: { url: '' },
        controlPlane: { enabled: false },
        proxy: { config: { store: { redis: 'redis://r:6379' } } },
      }),
    ).not.toThrow();
  });

  it.each([
    ['one port for traffic and admin', { proxy: { port: 9464, adminPort: 9464 } }, /must differ/],
    [
      'a sidecar backend on the proxy port',
      {
        ...(readYaml('charts/lanekeeper/ci/sidecar-values.yaml') as Tree),
        sidecar: { backend: { image: { repository: 'b' }, port: 8080 } },
      },
      /sidecar.backend.port/,
    ],
    [
      'minReplicas above maxReplicas',
      { proxy: { autoscaling: { minReplicas: 10, maxReplicas: 2 } } },
      /minReplicas/,
    ],
    [
      'one token for admin and proxies',
      { controlPlane: { adminToken: 't'.repeat(32), proxyToken: 't'.repeat(32) } },
      /must differ/,
    ],
  ] as [string, Tree, RegExp][])(
    'refuses %s when it renders, not after the install',
    (_what, override, says) => {
      expect(() => renderChart(override)).toThrow(says);
    },
  );

  it('runs several providers from proxy.config.upstreams, in place of the one upstream', () => {
    const upstreams = {
      openai: {
        url: 'https://api.openai.com',
        headers: { authorization: 'Bearer ${OPENAI_API_KEY}' },
        models: ['gpt-*'],
      },
      anthropic: { url: 'https://api.anthropic.com', dialect: 'anthropic', models: ['claude-*'] },
    };
    const configMap = find(
      renderChart({ proxy: { config: { upstreams } } }).manifests,
      'ConfigMap',
      'lk-lanekeeper-proxy',
    );
    const raw = parseYamlConfig(configMap?.data?.['config.yaml'] ?? '', {
      ...ADMIN_ENV,
      LANEKEEPER_PROXY_TOKEN: 'proxy-token-from-secret',
      OPENAI_API_KEY: 'k',
    });
    // The proxy refused `upstream` and `upstreams` together: every pod failed at start.
    expect(raw).not.toHaveProperty('upstream');
    // Helm writes maps with their keys sorted: the order written in values is lost, and the
    // first upstream whose models match wins. The chart's docs say so.
    expect(Object.keys(parseConfig(raw).upstreams ?? {})).toEqual(['anthropic', 'openai']);
    expect(() =>
      renderChart({
        ...(readYaml('charts/lanekeeper/ci/sidecar-values.yaml') as Tree),
        proxy: { config: { upstreams } },
      }),
    ).toThrow(/gateway mode/);
    // Nor is the unused proxy.upstream.url a placeholder to warn of.
    expect(renderChart({ proxy: { config: { upstreams } } }).notes).not.toContain('proxy.upstream.url');
  });

  it('warns in NOTES only of the placeholders the install uses', () => {
    expect(renderChart().notes).toContain('placeholders (proxy.upstream.url and controlPlane.database.url)');
    expect(renderChart(readYaml('charts/lanekeeper/ci/sidecar-values.yaml') as Tree).notes).not.toContain(
      'WARNING',
    );
    // Standalone fronts the placeholder upstream, and has no database.
    expect(renderChart(readYaml('charts/lanekeeper/ci/standalone-values.yaml') as Tree).notes).toContain(
      'placeholders (proxy.upstream.url).',
    );
  });

  it('rolls the proxy pods, with the control plane, when a token they read changes', () => {
    const podAnnotations = (override: Tree, name: string) =>
      (
        find(renderChart(override).manifests, 'Deployment', name)?.spec?.template as unknown as {
          metadata: { annotations?: Record<string, string> };
        }
      ).metadata.annotations ?? {};
    const tokens = (proxyToken: string, metricsToken: string): Tree => ({
      controlPlane: { proxyToken, adminToken: 'a'.repeat(32) },
      proxy: { adminToken: 'b'.repeat(32), metricsToken },
    });
    const before = podAnnotations(tokens('p'.repeat(32), 'm'.repeat(32)), 'lk-lanekeeper-proxy');
    const rotated = podAnnotations(tokens('q'.repeat(32), 'm'.repeat(32)), 'lk-lanekeeper-proxy');
    const newMetrics = podAnnotations(tokens('p'.repeat(32), 'n'.repeat(32)), 'lk-lanekeeper-proxy');
    expect(before['checksum/secret']).toMatch(/^[0-9a-f]{64}$/);
    expect(before['checksum/proxy-secret']).toMatch(/^[0-9a-f]{64}$/);
    expect(rotated['checksum/secret']).not.toBe(before['checksum/secret']);
    expect(newMetrics['checksum/proxy-secret']).not.toBe(before['checksum/proxy-secret']);
    // The same values render the same pods: no roll without a change.
    expect(podAnnotations(tokens('p'.repeat(32), 'm'.repeat(32)), 'lk-lanekeeper-proxy')).toEqual(before);
  });

  it('with redis.existingSecret, the Redis URL (and its password) is in no ConfigMap or pod spec', () => {
    const { manifests } = renderChart({
      redis: { url: 'redis://default:s3cret-pass@redis:6379', existingSecret: 'redis-credentials' },
    });
    expect(JSON.stringify(manifests)).not.toContain('s3cret-pass');
    const ref = { secretKeyRef: { name: 'redis-credentials', key: 'redis-url' } };
    const envOf = (name: string, container: string) =>
      find(manifests, 'Deployment', name)?.spec?.template?.spec.containers.find((c) => c.name === container)
        ?.env;
    expect(envOf('lk-lanekeeper-proxy', 'lanekeeper-proxy')).toContainEqual({
      name: 'LANEKEEPER_REDIS_URL',
      valueFrom: ref,
    });
    expect(envOf('lk-lanekeeper-control-plane', 'control-plane')).toContainEqual({
      name: 'REDIS_URL',
      valueFrom: ref,
    });
    // The proxy fills the URL from its environment when it loads the file.
    const raw = parseYamlConfig(
      find(manifests, 'ConfigMap', 'lk-lanekeeper-proxy')?.data?.['config.yaml'] ?? '',
      {
        ...ADMIN_ENV,
        LANEKEEPER_PROXY_TOKEN: 't',
        LANEKEEPER_REDIS_URL: 'redis://default:from-secret@redis:6379',
      },
    );
    expect(parseConfig(raw).store).toMatchObject({
      redis: 'redis://default:from-secret@redis:6379',
      key_prefix: 'lk:',
    });
  });

  it('the chart Secret holds the database URL and two distinct generated tokens', () => {
    const secret = find(renderChart().manifests, 'Secret', 'lk-lanekeeper-secrets');
    const data = Object.fromEntries(
      Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
    expect(data['database-url']).toBe('postgres://lanekeeper:lanekeeper@postgres:5432/lanekeeper');
    expect(data['admin-token']?.length).toBe(40);
    expect(data['proxy-token']?.length).toBe(40);
    expect(data['admin-token']).not.toBe(data['proxy-token']);
  });

  it('the migration Job is a pre-install/pre-upgrade hook that reads a hook Secret created before it', () => {
    const { manifests } = renderChart();
    const job = find(manifests, 'Job', 'lk-lanekeeper-control-plane-migrate');
    const hookSecret = find(manifests, 'Secret', 'lk-lanekeeper-control-plane-migrate');
    expect(job?.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(hookSecret?.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(Number(hookSecret?.metadata.annotations?.['helm.sh/hook-weight'])).toBeLessThan(
      Number(job?.metadata.annotations?.['helm.sh/hook-weight']),
    );
    const container = job?.spec?.template?.spec.containers[0] as Container & { args: string[] };
    expect(container.args).toEqual(['node', 'proxy/bin/lanekeeper.js', 'migrate']);
    expect(container.env?.[0]?.valueFrom?.secretKeyRef?.name).toBe('lk-lanekeeper-control-plane-migrate');
  });

  it('gives the control plane and the migration Job environments their config loaders accept', () => {
    const { manifests } = renderChart();
    const secrets = manifests.filter((m) => m.kind === 'Secret');
    /** The environment Kubernetes would give the first container of `m`, secrets resolved. */
    const envOf = (m: Manifest | undefined) =>
      Object.fromEntries(
        (m?.spec?.template?.spec.containers[0]?.env ?? []).map((e) => {
          const ref = e.valueFrom?.secretKeyRef;
          const fromSecret = ref && secrets.find((x) => x.metadata.name === ref.name)?.data?.[ref.key];
          return [
            e.name,
            e.value ?? (fromSecret ? Buffer.from(fromSecret, 'base64').toString() : 'pod-name-from-fieldRef'),
          ];
        }),
      );
    const config = loadConfig(envOf(find(manifests, 'Deployment', 'lk-lanekeeper-control-plane')));
    expect(config.port).toBe(8081);
    expect(config.redisUrl).toBe('redis://redis:6379');
    expect(config.keyPrefix).toBe('lk:');
    expect(config.ledger.consumer).toBe('pod-name-from-fieldRef');
    const migrate = loadMigrateConfig(envOf(find(manifests, 'Job', 'lk-lanekeeper-control-plane-migrate')));
    expect(migrate.databaseUrl).toBe('postgres://lanekeeper:lanekeeper@postgres:5432/lanekeeper');
  });

  it('passes the control plane its trusted proxies and cookie setting, which its config loader accepts', () => {
    const envOf = (override: Tree) =>
      Object.fromEntries(
        (
          find(renderChart(override).manifests, 'Deployment', 'lk-lanekeeper-control-plane')?.spec?.template
            ?.spec.containers[0]?.env ?? []
        ).map((e) => [e.name, e.value ?? 'from-a-secret']),
      );
    const plain = envOf({});
    expect(plain.LANEKEEPER_TRUSTED_PROXIES).toBeUndefined();
    expect(plain.LANEKEEPER_CONSOLE_SECURE_COOKIE).toBe('auto');
    // A YAML boolean, as `--set controlPlane.consoleSecureCookie=true` gives, is written as the word.
    const behindIngress = envOf({
      controlPlane: { trustedProxies: ['10.0.0.0/8', 'fd00::/8', '192.168.1.7'], consoleSecureCookie: true },
    });
    expect(behindIngress.LANEKEEPER_TRUSTED_PROXIES).toBe('10.0.0.0/8,fd00::/8,192.168.1.7');
    expect(behindIngress.LANEKEEPER_CONSOLE_SECURE_COOKIE).toBe('true');
    const config = loadConfig({
      ...behindIngress,
      DATABASE_URL: 'postgres://db/lk',
      LANEKEEPER_ADMIN_TOKEN: 'a'.repeat(32),
      LANEKEEPER_PROXY_TOKEN: 'p'.repeat(32),
    });
    expect(config.trustedProxies).toEqual(['10.0.0.0/8', 'fd00::/8', '192.168.1.7']);
    expect(config.consoleSecureCookie).toBe('always');
  });

  it('passes the control plane its collection templates as JSON', () => {
    const cp = find(renderChart().manifests, 'Deployment', 'lk-lanekeeper-control-plane');
    const value = cp?.spec?.template?.spec.containers[0]?.env?.find(
      (e) => e.name === 'LANEKEEPER_COLLECTION_TEMPLATES',
    )?.value;
    expect(JSON.parse(value ?? '')).toEqual([{ name: 'documents', size: 1536, distance: 'Cosine' }]);
  });

  it('the ServiceMonitor sends the metrics token the proxy reads, from the same Secret', () => {
    const { manifests } = renderChart(readYaml('charts/lanekeeper/ci/gateway-values.yaml') as Tree);
    const monitor = find(manifests, 'ServiceMonitor', 'lk-lanekeeper-proxy');
    const endpoint = (monitor?.spec?.endpoints as Record<string, unknown>[] | undefined)?.[0];
    expect(endpoint?.authorization).toEqual({
      type: 'Bearer',
      credentials: { name: 'lk-lanekeeper-proxy-secrets', key: 'metrics-token' },
    });
    const env = find(manifests, 'Deployment', 'lk-lanekeeper-proxy')?.spec?.template?.spec.containers[0]?.env;
    expect(env).toContainEqual({
      name: 'LANEKEEPER_METRICS_TOKEN',
      valueFrom: { secretKeyRef: { name: 'lk-lanekeeper-proxy-secrets', key: 'metrics-token' } },
    });
    expect(env).toContainEqual({
      name: 'LANEKEEPER_ADMIN_TOKEN',
      valueFrom: { secretKeyRef: { name: 'lk-lanekeeper-proxy-secrets', key: 'admin-token' } },
    });
    const secret = find(manifests, 'Secret', 'lk-lanekeeper-proxy-secrets');
    const data = Object.fromEntries(
      Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
    expect(data['metrics-token']?.length).toBe(40);
    expect(data['admin-token']?.length).toBe(40);
    expect(data['metrics-token']).not.toBe(data['admin-token']);
  });

  it('ships a NetworkPolicy by default: traffic port open, admin port only from the Prometheus namespace', () => {
    const policy = find(renderChart().manifests, 'NetworkPolicy', 'lk-lanekeeper-proxy');
    const proxy = find(renderChart().manifests, 'Deployment', 'lk-lanekeeper-proxy');
    const spec = policy?.spec as {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      ingress: { ports: { port: string }[]; from?: unknown[] }[];
    };
    expect(subset(spec.podSelector.matchLabels, proxy?.spec?.template?.metadata.labels)).toBe(true);
    expect(spec.policyTypes).toEqual(['Ingress']);
    expect(spec.ingress).toEqual([
      { ports: [{ port: 'http', protocol: 'TCP' }] },
      {
        ports: [{ port: 'admin', protocol: 'TCP' }],
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
      },
    ]);
    const narrowed = find(
      renderChart({
        proxy: {
          networkPolicy: { prometheusNamespace: 'obs', prometheusPodSelector: { app: 'prometheus' } },
        },
      }).manifests,
      'NetworkPolicy',
      'lk-lanekeeper-proxy',
    );
    expect((narrowed?.spec as typeof spec).ingress[1]?.from).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'obs' } },
        podSelector: { matchLabels: { app: 'prometheus' } },
      },
    ]);
    expect(
      find(
        renderChart({ proxy: { networkPolicy: { enabled: false } } }).manifests,
        'NetworkPolicy',
        'lk-lanekeeper-proxy',
      ),
    ).toBeUndefined();
  });

  it('the optional ServiceMonitor selects the admin Service, and the dashboard ConfigMap carries the JSON', () => {
    const { manifests } = renderChart(readYaml('charts/lanekeeper/ci/gateway-values.yaml') as Tree);
    const monitor = find(manifests, 'ServiceMonitor', 'lk-lanekeeper-proxy');
    const admin = find(manifests, 'Service', 'lk-lanekeeper-proxy-admin');
    expect(subset(monitor?.spec?.selector?.matchLabels, admin?.metadata.labels)).toBe(true);
    expect(
      subset(
        monitor?.spec?.selector?.matchLabels,
        find(manifests, 'Service', 'lk-lanekeeper-proxy')?.metadata.labels,
      ),
    ).toBe(false);
    const dashboard = find(manifests, 'ConfigMap', 'lk-lanekeeper-dashboard');
    expect(dashboard?.metadata.labels?.grafana_dashboard).toBe('1');
    expect(JSON.parse(dashboard?.data?.['lanekeeper.json'] ?? '')).toMatchObject({
      uid: 'lanekeeper-overview',
    });
  });

  it('standalone mode renders no control plane and keeps plans and tenants in the proxy config', () => {
    const { manifests } = renderChart(readYaml('charts/lanekeeper/ci/standalone-values.yaml') as Tree);
    expect(manifests.filter((m) => m.metadata.name.includes('control-plane'))).toEqual([]);
    const config = parseConfig(
      parseYamlConfig(
        find(manifests, 'ConfigMap', 'lk-lanekeeper-proxy')?.data?.['config.yaml'] ?? '',
        ADMIN_ENV,
      ),
    );
    expect(config.store).toBe('memory');
    expect(config.control_plane).toBeUndefined();
    expect(config.tenants.map((t) => t.id)).toEqual(['acme']);
    expect(find(manifests, 'Deployment', 'lk-lanekeeper-proxy')?.spec?.replicas).toBe(1);
  });

  it('refuses sidecar mode without a backend image, with a message saying what to set', () => {
    expect(() => renderChart({ mode: 'sidecar' })).toThrow(RenderError);
    expect(() => renderChart({ mode: 'sidecar' })).toThrow(/sidecar\.backend\.image\.repository/);
  });
});
