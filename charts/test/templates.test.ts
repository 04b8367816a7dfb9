/**
 * Static checks of every chart template, standing in for `helm lint` on machines without
 * Helm: each file lexes as a Go template with balanced blocks, calls only functions Helm
 * has and named templates the chart defines, and reads only values that values.yaml has.
 */
import { describe, expect, it } from 'vitest';
import { defaultValues, templateSources, valueAt } from './chart.js';
import { calledTemplates, checkTemplate, definedTemplates, valuesPaths } from './go-template.js';

const sources = templateSources();
const helpers = sources.get('_helpers.tpl') ?? '';
const defined = new Set([...sources.values()].flatMap(definedTemplates));

describe('chart templates', () => {
  it('include the manifests of both modes, the control plane and the optional extras', () => {
    expect([...sources.keys()]).toEqual(
      expect.arrayContaining([
        '_helpers.tpl',
        'NOTES.txt',
        'proxy-configmap.yaml',
        'proxy-deployment.yaml',
        'proxy-service.yaml',
        'proxy-hpa.yaml',
        'proxy-pdb.yaml',
        'proxy-servicemonitor.yaml',
        'control-plane-deployment.yaml',
        'control-plane-service.yaml',
        'control-plane-migrate-job.yaml',
        'secret.yaml',
        'grafana-dashboard.yaml',
      ]),
    );
  });

  it('define every named template in _helpers.tpl, including the sidecar container users include', () => {
    expect(new Set(definedTemplates(helpers))).toEqual(defined);
    expect(defined).toContain('lanekeeper.sidecarContainer');
    expect(defined).toContain('lanekeeper.sidecarVolumes');
    for (const name of [
      'lanekeeper.name',
      'lanekeeper.fullname',
      'lanekeeper.labels',
      'lanekeeper.selectorLabels',
      'lanekeeper.image',
    ]) {
      expect(defined).toContain(name);
    }
  });

  it.each([...sources.entries()])(
    '%s parses as a Go template with balanced blocks and known names',
    (_name, text) => {
      expect(checkTemplate(text, defined)).toEqual([]);
    },
  );

  it.each([...sources.entries()])('%s reads only values that values.yaml defines', (_name, text) => {
    const values = defaultValues();
    const missing = valuesPaths(text).filter((path) => valueAt(values, path) === undefined);
    expect(missing).toEqual([]);
  });

  it('read the values that matter through the checker (it follows $variables into .Values)', () => {
    const paths = new Set([...sources.values()].flatMap(valuesPaths));
    for (const path of [
      'proxy.autoscaling.minReplicas',
      'proxy.autoscaling.behavior',
      'proxy.port',
      'sidecar.backend.port',
      'controlPlane.secretKeys.adminToken',
    ]) {
      expect(paths).toContain(path);
    }
  });

  it('use every named template they define somewhere (no dead helpers)', () => {
    const called = new Set([...sources.values()].flatMap(calledTemplates));
    const unused = [...defined].filter((name) => !called.has(name));
    expect(unused).toEqual([]);
  });

  it('route sidecar-mode traffic to the backend over localhost only', () => {
    expect(helpers).toMatch(/printf "http:\/\/127\.0\.0\.1:%v" \.Values\.sidecar\.backend\.port/);
    expect(sources.get('proxy-service.yaml')).toMatch(/targetPort: http\b/);
    expect(sources.get('proxy-service.yaml')).not.toMatch(/targetPort: backend/);
  });

  it('run migrations as a pre-install and pre-upgrade hook', () => {
    const job = sources.get('control-plane-migrate-job.yaml') ?? '';
    expect(job).toMatch(/kind: Job/);
    expect(job).toMatch(/helm\.sh\/hook: pre-install,pre-upgrade/);
    expect(job).toMatch(/"migrate"/);
  });

  it('probe the proxy on the admin port: readiness /readyz, liveness /healthz', () => {
    const values = defaultValues();
    expect(valueAt(values, 'proxy.readinessProbe.httpGet')).toEqual({ path: '/readyz', port: 'admin' });
    expect(valueAt(values, 'proxy.livenessProbe.httpGet')).toEqual({ path: '/healthz', port: 'admin' });
    expect(helpers).toMatch(/- name: admin\n\s+containerPort: \{\{ \$v\.proxy\.adminPort \}\}/);
  });

  it('keep the optional ServiceMonitor and Grafana dashboard off by default', () => {
    const values = defaultValues();
    expect(valueAt(values, 'proxy.serviceMonitor.enabled')).toBe(false);
    expect(valueAt(values, 'grafana.dashboard.enabled')).toBe(false);
    expect(sources.get('grafana-dashboard.yaml')).toMatch(/\.Files\.Get "dashboards\/lanekeeper\.json"/);
  });
});
