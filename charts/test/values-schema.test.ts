/**
 * values.yaml against values.schema.json, validated with ajv as Helm does before it renders:
 * the defaults and the ci/ values files pass, and each kind of bad value is refused with an
 * error at the path of the mistake.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHART_DIR, coalesce, compileValuesSchema, defaultValues, readYaml, type Tree } from './chart.js';

const validate = compileValuesSchema();

/** Validates the defaults with `override` layered on top, as `helm install -f` would. */
function errorsFor(override: Tree): string[] {
  const ok = validate(coalesce(defaultValues(), override));
  return ok ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

describe('values.schema.json', () => {
  it('accepts the default values.yaml', () => {
    expect(errorsFor({})).toEqual([]);
  });

  const ciFiles = readdirSync(join(CHART_DIR, 'ci')).filter((name) => name.endsWith('.yaml'));
  it('has ci/ values files for gateway, sidecar and standalone installs', () => {
    expect(ciFiles.sort()).toEqual(['gateway-values.yaml', 'sidecar-values.yaml', 'standalone-values.yaml']);
  });

  it.each(ciFiles)('accepts ci/%s layered over the defaults', (name) => {
    expect(errorsFor(readYaml(`charts/lanekeeper/ci/${name}`) as Tree)).toEqual([]);
  });

  const rejected: [string, Tree, string][] = [
    ['an unknown mode', { mode: 'daemonset' }, '/mode'],
    ['a misspelt top-level key', { prxy: {} }, ''],
    ['a misspelt proxy key', { proxy: { replicas: 3 } }, '/proxy'],
    ['a port out of range', { proxy: { port: 70000 } }, '/proxy/port'],
    [
      'an upstream URL without a scheme',
      { proxy: { upstream: { url: 'ai-backend:8000' } } },
      '/proxy/upstream/url',
    ],
    [
      'a non-numeric requests/s target',
      { proxy: { autoscaling: { requestsPerSecond: { averageValue: 'fifty' } } } },
      '/proxy/autoscaling/requestsPerSecond/averageValue',
    ],
    [
      'a CPU target over 100%',
      { proxy: { autoscaling: { cpu: { averageUtilization: 140 } } } },
      '/proxy/autoscaling/cpu/averageUtilization',
    ],
    [
      'zero minimum replicas',
      { proxy: { autoscaling: { minReplicas: 0 } } },
      '/proxy/autoscaling/minReplicas',
    ],
    [
      'a scale-up policy of an unknown type',
      {
        proxy: {
          autoscaling: {
            behavior: { scaleUp: { policies: [{ type: 'Nodes', value: 1, periodSeconds: 60 }] } },
          },
        },
      },
      '/proxy/autoscaling/behavior/scaleUp/policies/0/type',
    ],
    [
      'an empty scale-down policy list',
      { proxy: { autoscaling: { behavior: { scaleDown: { policies: [] } } } } },
      '/proxy/autoscaling/behavior/scaleDown/policies',
    ],
    ['sidecar mode without a backend image', { mode: 'sidecar' }, '/sidecar/backend/image/repository'],
    ['a control plane without Redis', { redis: { url: '' } }, '/redis/url'],
    ['a Redis URL of another scheme', { redis: { url: 'http://redis:6379' } }, '/redis/url'],
    [
      'a database URL that is not PostgreSQL',
      { controlPlane: { database: { url: 'mysql://db/lk' } } },
      '/controlPlane/database/url',
    ],
    [
      'an admin token shorter than 16 characters',
      { controlPlane: { adminToken: 'short' } },
      '/controlPlane/adminToken',
    ],
    ['an unknown vector mode', { controlPlane: { vectorMode: 'shared' } }, '/controlPlane/vectorMode'],
    // The proxy refuses them at start: the install succeeded, then every pod crash-looped.
    [
      'a proxy admin token shorter than 16 characters',
      { proxy: { adminToken: 'short' } },
      '/proxy/adminToken',
    ],
    [
      'a proxy metrics token shorter than 16 characters',
      { proxy: { metricsToken: 'x'.repeat(15) } },
      '/proxy/metricsToken',
    ],
    ['no Redis at all for a control plane', { redis: { url: '', existingSecret: '' } }, '/redis/url'],
    // Joined with commas into LANEKEEPER_TRUSTED_PROXIES: an entry must not smuggle in another.
    [
      'a trusted proxy entry holding a second range after a comma',
      { controlPlane: { trustedProxies: ['10.0.0.1,0.0.0.0/0'] } },
      '/controlPlane/trustedProxies/0',
    ],
    [
      'a trusted proxy given as a host name',
      { controlPlane: { trustedProxies: ['ingress-nginx.local'] } },
      '/controlPlane/trustedProxies/0',
    ],
    [
      'a trusted proxy entry with a space',
      { controlPlane: { trustedProxies: ['10.0.0.1 '] } },
      '/controlPlane/trustedProxies/0',
    ],
    [
      'more than 64 trusted proxies',
      { controlPlane: { trustedProxies: Array.from({ length: 65 }, (_, i) => `10.0.0.${i}`) } },
      '/controlPlane/trustedProxies',
    ],
    [
      'trusted proxies as one string',
      { controlPlane: { trustedProxies: '10.0.0.0/8' } },
      '/controlPlane/trustedProxies',
    ],
    [
      'a cookie setting other than auto, true or false',
      { controlPlane: { consoleSecureCookie: 'yes' } },
      '/controlPlane/consoleSecureCookie',
    ],
    [
      'a collection template with an unknown distance',
      { controlPlane: { collectionTemplates: [{ name: 'docs', size: 8, distance: 'Hamming' }] } },
      '/controlPlane/collectionTemplates/0/distance',
    ],
    [
      'a PDB budget that is neither a count nor a percentage',
      { proxy: { podDisruptionBudget: { maxUnavailable: 'half' } } },
      '/proxy/podDisruptionBudget/maxUnavailable',
    ],
    [
      'an image pull policy Kubernetes does not know',
      { image: { pullPolicy: 'Sometimes' } },
      '/image/pullPolicy',
    ],
    // Rendered unquoted into manifests: a newline or a colon there adds YAML of its own.
    [
      'a custom metric name carrying more YAML',
      {
        proxy: {
          autoscaling: {
            requestsPerSecond: { metricName: 'rps\n          selector: {matchLabels: {x: y}}' },
          },
        },
      },
      '/proxy/autoscaling/requestsPerSecond/metricName',
    ],
    [
      'a dashboard label key carrying another label',
      { grafana: { dashboard: { label: 'grafana_dashboard: "1"\n    evil' } } },
      '/grafana/dashboard/label',
    ],
    [
      'a Secret key with a colon',
      { proxy: { secretKeys: { metricsToken: 'a: b' } } },
      '/proxy/secretKeys/metricsToken',
    ],
    [
      'an existing Secret name with a space',
      { controlPlane: { existingSecret: 'my secret' } },
      '/controlPlane/existingSecret',
    ],
    ['a service account name in capitals', { serviceAccount: { name: 'Admin' } }, '/serviceAccount/name'],
    ['a fullname override with a newline', { fullnameOverride: 'lk\nkind: Secret' }, '/fullnameOverride'],
    [
      'an env var name with a space',
      { proxy: { extraEnv: [{ name: 'A B', value: 'x' }] } },
      '/proxy/extraEnv/0/name',
    ],
    [
      'a Prometheus namespace that is no namespace',
      { proxy: { networkPolicy: { prometheusNamespace: 'monitoring\nx' } } },
      '/proxy/networkPolicy/prometheusNamespace',
    ],
  ];

  it('takes redis.existingSecret instead of redis.url, as values.yaml and the docs say', () => {
    expect(errorsFor({ redis: { url: '', existingSecret: 'my-redis' } })).toEqual([]);
  });

  it('takes proxy tokens left empty (generated) or of 16 characters', () => {
    expect(errorsFor({ proxy: { adminToken: '', metricsToken: 'm'.repeat(16) } })).toEqual([]);
  });

  it.each(rejected)('rejects %s', (_name, override, path) => {
    const errors = errorsFor(override);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.some((e) => e.startsWith(`${path} `))).toBe(true);
  });

  it.each([
    [
      'IPv4 and IPv6 addresses and ranges',
      { trustedProxies: ['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1'] },
    ],
    ['the cookie setting as a YAML boolean', { consoleSecureCookie: true }],
    ['the cookie setting as a word', { consoleSecureCookie: 'false' }],
  ])('accepts %s behind an ingress', (_name, controlPlane) => {
    expect(errorsFor({ controlPlane })).toEqual([]);
  });

  it('accepts values a parent chart passes down under "global"', () => {
    expect(errorsFor({ global: { imageRegistry: 'registry.example' } })).toEqual([]);
  });
});
