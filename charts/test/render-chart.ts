/**
 * Renders the whole chart, as `helm template lk charts/lanekeeper -n ai -f <override>` would,
 * into parsed manifests (and NOTES.txt), for the chart's tests and those that look at one kind
 * of object (alert rules, dashboards).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CHART_DIR, coalesce, defaultValues, readYaml, templateSources, type Tree } from './chart.js';
import { parseTemplates, render } from './go-template-render.js';

/** A rendered Kubernetes object, loosely typed. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

const sources = templateSources();
const templates = parseTemplates(
  new Map([...sources].map(([name, text]) => [`lanekeeper/templates/${name}`, text])),
);
const chart = readYaml('charts/lanekeeper/Chart.yaml') as {
  name: string;
  version: string;
  appVersion: string;
};

function contextOf(override: Tree) {
  return {
    Values: coalesce(defaultValues(), override),
    Release: { Name: 'lk', Namespace: 'ai', Service: 'Helm', IsInstall: true, IsUpgrade: false },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
    Template: { BasePath: 'lanekeeper/templates', Name: '' },
    Files: { Get: (path: string) => readFileSync(join(CHART_DIR, path), 'utf8') },
    Capabilities: { KubeVersion: { Version: 'v1.31.0' } },
  };
}

function manifestsOf(context: ReturnType<typeof contextOf>): Manifest[] {
  const manifests: Manifest[] = [];
  for (const name of sources.keys()) {
    if (name.startsWith('_') || name === 'NOTES.txt') continue;
    const text = render(templates, `lanekeeper/templates/${name}`, context);
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) throw new Error(`${name}: ${doc.errors.join('; ')}\n${text}`);
      const value = doc.toJS() as Manifest | null;
      if (value) manifests.push(value);
    }
  }
  return manifests;
}

/** Every manifest the chart renders with `override` over values.yaml; throws on YAML that does not parse. */
export function renderManifests(override: Tree = {}): Manifest[] {
  return manifestsOf(contextOf(override));
}

/** What `helm template` would print with `override`: the manifests, and NOTES.txt. */
export function renderChart(override: Tree = {}): { manifests: Manifest[]; notes: string } {
  const context = contextOf(override);
  return {
    manifests: manifestsOf(context),
    notes: render(templates, 'lanekeeper/templates/NOTES.txt', context),
  };
}

/**
 * A parent chart's template that includes this chart's helpers, as docs/deployment.md shows
 * (`lanekeeper` a dependency of `support-bot`): rendered with the parent's context, this
 * chart's coalesced values under `.Values.lanekeeper`, and release `release`.
 */
export function renderFromParent(template: string, override: Tree = {}, release = 'prod'): string {
  const parentTemplates = parseTemplates(
    new Map([
      ...[...sources]
        .filter(([name]) => name.endsWith('.tpl'))
        .map(([name, text]) => [`support-bot/charts/lanekeeper/templates/${name}`, text] as const),
      ['support-bot/templates/deployment.yaml', template],
    ]),
  );
  return render(parentTemplates, 'support-bot/templates/deployment.yaml', {
    Values: { lanekeeper: coalesce(defaultValues(), override) },
    Release: { Name: release, Namespace: 'ai', Service: 'Helm', IsInstall: true, IsUpgrade: false },
    Chart: { Name: 'support-bot', Version: '1.0.0', AppVersion: '2.3.4' },
    Template: { BasePath: 'support-bot/templates', Name: '' },
    Capabilities: { KubeVersion: { Version: 'v1.31.0' } },
  });
}
