/**
 * The chart's PrometheusRule (templates/prometheusrule.yaml): off by default; when on, its
 * rule groups pass Prometheus' own `promtool check rules`, and `promtool test rules` shows
 * each alert firing on the series that should fire it and staying quiet on those that
 * should not. Every metric an alert reads must be one the proxy exports. Hostile values
 * (wrong types, label names that would break out of the YAML) are refused by the schema or
 * rendered as inert strings.
 *
 * promtool comes from Debian's `prometheus` package (charts/test/ensure-prometheus.sh).
 * Without it the promtool part is skipped visibly on a developer machine and fails in CI.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { coalesce, compileValuesSchema, defaultValues, type Tree } from './chart.js';
import { exportedMetricNames, referencedMetrics } from './exported-metrics.js';
import { renderManifests, type Manifest } from './render-chart.js';

const installed = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;
if (!installed && process.env.CI) {
  throw new Error('promtool is missing: run charts/test/ensure-prometheus.sh before the tests');
}

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
}

const ON = { prometheusRule: { enabled: true } };

function ruleObjects(override: Tree): Manifest[] {
  return renderManifests(override).filter((m) => m.kind === 'PrometheusRule');
}

function groupsOf(override: Tree = ON): RuleGroup[] {
  const [rule, ...more] = ruleObjects(override);
  expect(more).toEqual([]);
  expect(rule?.apiVersion).toBe('monitoring.coreos.com/v1');
  return (rule?.spec as { groups: RuleGroup[] }).groups;
}

const alerts = (groups: RuleGroup[]) => groups.flatMap((g) => g.rules);

describe('the PrometheusRule', () => {
  it('is off by default: nothing is rendered', () => {
    expect(defaultValues().prometheusRule).toMatchObject({ enabled: false });
    expect(ruleObjects({})).toEqual([]);
  });

  it('has the five alerts when enabled, each reading only metrics the proxy exports', async () => {
    const rules = alerts(groupsOf());
    expect(rules.map((r) => r.alert).sort()).toEqual([
      'LanekeeperHighLatency',
      'LanekeeperStoreDown',
      'LanekeeperTenantBudgetNearlySpent',
      'LanekeeperUpstreamEjected',
      'LanekeeperUsageEventsDropped',
    ]);
    const exported = await exportedMetricNames();
    for (const rule of rules) {
      const used = referencedMetrics(rule.expr);
      expect(used.length, rule.alert).toBeGreaterThan(0);
      expect(
        used.filter((name) => !exported.has(name)),
        rule.alert,
      ).toEqual([]);
    }
  });

  it('takes its thresholds, durations and labels from values', () => {
    const groups = groupsOf({
      prometheusRule: {
        enabled: true,
        labels: { release: 'kube-prometheus-stack' },
        alertLabels: { team: 'ai-platform', severity: 'page' },
        budgetRatio: 0.75,
        latencyP99Seconds: 12.5,
        for: { budget: '1h', storeDown: '30s', upstreamEjected: '1m', eventsDropped: '2m', latency: '15m' },
      },
    });
    const byName = new Map(alerts(groups).map((r) => [r.alert, r]));
    expect(byName.get('LanekeeperTenantBudgetNearlySpent')?.expr).toContain('> 0.75');
    expect(byName.get('LanekeeperHighLatency')?.expr).toContain('> 12.5');
    expect(byName.get('LanekeeperTenantBudgetNearlySpent')?.for).toBe('1h');
    expect(byName.get('LanekeeperStoreDown')?.for).toBe('30s');
    expect(byName.get('LanekeeperUsageEventsDropped')?.for).toBe('2m');
    for (const rule of byName.values()) {
      // The operator's severity replaces the built-in one instead of making a duplicate key.
      expect(rule.labels).toEqual({ severity: 'page', team: 'ai-platform' });
    }
    const [object] = ruleObjects({ prometheusRule: { enabled: true, labels: { release: 'kps' } } });
    expect(object?.metadata.labels).toMatchObject({ release: 'kps', 'app.kubernetes.io/component': 'proxy' });
    expect(object?.metadata.namespace).toBe('ai');
  });
});

describe('prometheusRule values the schema refuses', () => {
  const validate = compileValuesSchema();
  const accepts = (prometheusRule: Tree) =>
    validate(coalesce(defaultValues(), { prometheusRule } as Tree)) as boolean;

  it('accepts the defaults and a full, sensible override', () => {
    expect(accepts({ enabled: true })).toBe(true);
    expect(
      accepts({
        enabled: true,
        labels: { release: 'kube-prometheus-stack', 'example.com/team': 'ai' },
        alertLabels: { team: 'ai-platform', _route: 'x "quoted" value: with colons' },
        budgetRatio: 1,
        latencyP99Seconds: 0.5,
        for: { budget: '0s', storeDown: '90s', upstreamEjected: '1h', eventsDropped: '0m', latency: '1d' },
      }),
    ).toBe(true);
  });

  it.each<[string, Tree]>([
    ['enabled as a string', { enabled: 'true' }],
    ['a ratio as a string', { enabled: true, budgetRatio: '0.9' }],
    ['a ratio of zero', { enabled: true, budgetRatio: 0 }],
    ['a negative ratio', { enabled: true, budgetRatio: -0.5 }],
    ['a latency of zero', { enabled: true, latencyP99Seconds: 0 }],
    ['a latency as a duration string', { enabled: true, latencyP99Seconds: '30s' }],
    ['a duration in words', { enabled: true, for: { budget: '5 minutes' } }],
    ['a duration that is a PromQL injection', { enabled: true, for: { latency: '5m\n  expr: vector(1)' } }],
    ['a duration as a number', { enabled: true, for: { storeDown: 120 } }],
    ['an alert label name with a dash', { enabled: true, alertLabels: { 'bad-name': 'x' } }],
    ['an alert label name that breaks the YAML', { enabled: true, alertLabels: { 'a: b\n  expr': 'x' } }],
    ['an alert label value that is not a string', { enabled: true, alertLabels: { team: 5 } }],
    ['an object label value with a newline', { enabled: true, labels: { release: 'a\nb' } }],
    ['an object label name with spaces', { enabled: true, labels: { 'my label': 'x' } }],
    ['an unknown key', { enabled: true, budgetPercent: 90 }],
  ])('refuses %s', (_what, prometheusRule) => {
    expect(accepts(prometheusRule)).toBe(false);
  });

  it('renders a hostile alert label value as one inert string, leaving the rules intact', () => {
    const hostile = 'x"\n  expr: vector(1)\nfor: 0s\n{{ .Values }}';
    const rules = alerts(groupsOf({ prometheusRule: { enabled: true, alertLabels: { team: hostile } } }));
    expect(rules).toHaveLength(5);
    for (const rule of rules) {
      expect(rule.labels.team).toBe(hostile);
      expect(rule.expr).not.toContain('vector(1)');
      expect(rule.for).not.toBe('0s');
    }
  });
});

describe.skipIf(!installed)('the alert rules under promtool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lk-rules-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function writeRules(override: Tree = ON): string {
    const path = join(dir, 'rules.yaml');
    writeFileSync(path, stringify({ groups: groupsOf(override) }));
    return path;
  }

  function promtool(...args: string[]): { status: number | null; output: string } {
    const result = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  }

  /** Runs `promtool test rules` on one unit-test file over the rendered rules. */
  function testRules(
    name: string,
    tests: unknown[],
    override: Tree = ON,
  ): { status: number | null; output: string } {
    writeRules(override);
    const file = join(dir, `${name}.test.yaml`);
    writeFileSync(file, stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests }));
    return promtool('test', 'rules', file);
  }

  it('pass promtool check rules', () => {
    const result = promtool('check', 'rules', writeRules());
    expect(result.output).toContain('SUCCESS: 5 rules found');
    expect(result.status).toBe(0);
  });

  it('pass promtool check rules with hostile alert labels and odd thresholds', () => {
    const result = promtool(
      'check',
      'rules',
      writeRules({
        prometheusRule: {
          enabled: true,
          alertLabels: { team: 'x"\n  expr: vector(1)', severity: '{{ $labels.tenant }}' },
          budgetRatio: 1e-7,
          latencyP99Seconds: 1234.5,
        },
      }),
    );
    expect(result.output).toContain('SUCCESS: 5 rules found');
    expect(result.status).toBe(0);
  });

  it('would catch a broken expression (the check is not a no-op)', () => {
    const path = join(dir, 'broken.yaml');
    writeFileSync(
      path,
      stringify({ groups: [{ name: 'x', rules: [{ alert: 'X', expr: 'sum by (tenant' }] }] }),
    );
    expect(promtool('check', 'rules', path).status).not.toBe(0);
  });

  it('would catch a wrong expectation (promtool test rules is not a no-op)', () => {
    const result = testRules('wrong', [
      {
        interval: '1m',
        input_series: [{ series: 'lanekeeper_store_up{store="redis",instance="p1"}', values: '1x10' }],
        alert_rule_test: [
          {
            eval_time: '10m',
            alertname: 'LanekeeperStoreDown',
            exp_alerts: [{ exp_labels: { severity: 'critical' } }],
          },
        ],
      },
    ]);
    expect(result.status).not.toBe(0);
  });

  it('fire LanekeeperTenantBudgetNearlySpent past 90% of a day budget, summed over proxies, and not below it', () => {
    const budgetAnnotations = (tenant: string, share: string, window: string) => ({
      summary: `Tenant ${tenant} has spent ${share} of its ${window} budget.`,
      description:
        "The alert fires over a ratio of 0.9; at the full budget the proxy refuses the tenant's requests with 429.",
    });
    const result = testRules('budget', [
      {
        interval: '1m',
        input_series: [
          // acme spends $2/min over two proxies against $960/day: 90% is crossed after 432 min.
          { series: 'lanekeeper_cost_usd_total{tenant="acme",model="m",instance="p1"}', values: '0+1x500' },
          { series: 'lanekeeper_cost_usd_total{tenant="acme",model="m",instance="p2"}', values: '0+1x500' },
          { series: 'lanekeeper_budget_usd{tenant="acme",window="day",instance="p1"}', values: '960x500' },
          { series: 'lanekeeper_budget_usd{tenant="acme",window="day",instance="p2"}', values: '960x500' },
          // globex spends half as fast: never near its budget.
          { series: 'lanekeeper_cost_usd_total{tenant="globex",model="m",instance="p1"}', values: '0+1x500' },
          { series: 'lanekeeper_budget_usd{tenant="globex",window="day",instance="p1"}', values: '960x500' },
          // A zero budget refuses everything already; it is not "nearly" spent.
          { series: 'lanekeeper_cost_usd_total{tenant="zero",model="m",instance="p1"}', values: '0+1x500' },
          { series: 'lanekeeper_budget_usd{tenant="zero",window="day",instance="p1"}', values: '0x500' },
          // Spend with no budget at all: nothing to compare with.
          {
            series: 'lanekeeper_cost_usd_total{tenant="nobudget",model="m",instance="p1"}',
            values: '0+100x500',
          },
        ],
        alert_rule_test: [
          { eval_time: '430m', alertname: 'LanekeeperTenantBudgetNearlySpent', exp_alerts: [] },
          // Over 90% since 433 min, but for less than the default 5m.
          { eval_time: '436m', alertname: 'LanekeeperTenantBudgetNearlySpent', exp_alerts: [] },
          {
            eval_time: '450m',
            alertname: 'LanekeeperTenantBudgetNearlySpent',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', tenant: 'acme', window: 'day' },
                exp_annotations: budgetAnnotations('acme', '93.75%', 'day'),
              },
            ],
          },
        ],
      },
      {
        // The month budget: $1/min against $2520, crossed at 90% after 37.8 h; the day budget is far.
        interval: '1m',
        input_series: [
          { series: 'lanekeeper_cost_usd_total{tenant="acme",model="m",instance="p1"}', values: '0+1x2400' },
          {
            series: 'lanekeeper_budget_usd{tenant="acme",window="month",instance="p1"}',
            values: '2520x2400',
          },
          {
            series: 'lanekeeper_budget_usd{tenant="acme",window="day",instance="p1"}',
            values: '100000x2400',
          },
        ],
        alert_rule_test: [
          { eval_time: '30h', alertname: 'LanekeeperTenantBudgetNearlySpent', exp_alerts: [] },
          {
            eval_time: '40h',
            alertname: 'LanekeeperTenantBudgetNearlySpent',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', tenant: 'acme', window: 'month' },
                exp_annotations: budgetAnnotations('acme', '95.24%', 'month'),
              },
            ],
          },
        ],
      },
    ]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('fire LanekeeperStoreDown after 2m of a proxy seeing its store down, and not for a blip', () => {
    const result = testRules('store', [
      {
        interval: '1m',
        input_series: [
          { series: 'lanekeeper_store_up{store="redis",instance="p1",job="lk"}', values: '1 1 0x10' },
          { series: 'lanekeeper_store_up{store="redis",instance="p2",job="lk"}', values: '1 0 1x10' },
          { series: 'lanekeeper_store_up{store="redis",instance="p3",job="lk"}', values: '1x12' },
        ],
        alert_rule_test: [
          { eval_time: '3m', alertname: 'LanekeeperStoreDown', exp_alerts: [] },
          {
            eval_time: '5m',
            alertname: 'LanekeeperStoreDown',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', store: 'redis', instance: 'p1', job: 'lk' },
                exp_annotations: {
                  summary: 'Proxy p1 cannot reach its redis store.',
                  description:
                    'Requests are admitted without limits or refused with 503, as on_store_error says, and usage events wait in memory until it comes back.',
                },
              },
            ],
          },
        ],
      },
    ]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('fire LanekeeperUpstreamEjected for an upstream ejected 5m, and not for one back in time', () => {
    const result = testRules('upstream', [
      {
        interval: '1m',
        input_series: [
          { series: 'lanekeeper_upstream_up{upstream="openai",instance="p1"}', values: '1 0x10' },
          { series: 'lanekeeper_upstream_up{upstream="anthropic",instance="p1"}', values: '1 0 0 0 1x10' },
        ],
        alert_rule_test: [
          { eval_time: '4m', alertname: 'LanekeeperUpstreamEjected', exp_alerts: [] },
          {
            eval_time: '8m',
            alertname: 'LanekeeperUpstreamEjected',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', upstream: 'openai', instance: 'p1' },
                exp_annotations: {
                  summary: 'Upstream openai is ejected on p1.',
                  description:
                    'It failed several calls in a row; requests go to fallbacks or fail until it answers again.',
                },
              },
            ],
          },
        ],
      },
    ]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('fire LanekeeperUsageEventsDropped as soon as events are dropped, and stop once it stops', () => {
    const result = testRules('dropped', [
      {
        interval: '1m',
        input_series: [
          { series: 'lanekeeper_meter_events_dropped_total{instance="p1"}', values: '0 0 0 3x20' },
          // Dropped long ago, before this window: not a new loss.
          { series: 'lanekeeper_meter_events_dropped_total{instance="p2"}', values: '7x23' },
        ],
        alert_rule_test: [
          { eval_time: '2m', alertname: 'LanekeeperUsageEventsDropped', exp_alerts: [] },
          {
            eval_time: '4m',
            alertname: 'LanekeeperUsageEventsDropped',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', instance: 'p1' },
                exp_annotations: {
                  summary: 'Proxy p1 dropped usage events.',
                  description:
                    'The in-memory meter buffer overflowed while the store was away; the lost requests are not billed.',
                },
              },
            ],
          },
          { eval_time: '20m', alertname: 'LanekeeperUsageEventsDropped', exp_alerts: [] },
        ],
      },
    ]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('fire LanekeeperHighLatency when p99 stays over the threshold, and not when requests are fast', () => {
    const histogram = (le: string, values: string) => ({
      series: `lanekeeper_request_duration_seconds_bucket{tenant="acme",instance="p1",le="${le}"}`,
      values,
    });
    const annotations = (value: string) => ({
      summary: `The proxies' p99 request duration is ${value}, over 30s.`,
      description: 'Measured from request arrival to the last byte sent, streaming included.',
    });
    const result = testRules('latency', [
      {
        // Every request takes between 10 and 60 s: p99 interpolates to 59.5 s.
        interval: '1m',
        input_series: [
          histogram('1', '0x30'),
          histogram('10', '0x30'),
          histogram('60', '0+10x30'),
          histogram('+Inf', '0+10x30'),
        ],
        alert_rule_test: [
          { eval_time: '8m', alertname: 'LanekeeperHighLatency', exp_alerts: [] },
          {
            eval_time: '20m',
            alertname: 'LanekeeperHighLatency',
            exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: annotations('59.5s') }],
          },
        ],
      },
      {
        // Every request under a second.
        interval: '1m',
        input_series: [
          histogram('1', '0+10x30'),
          histogram('10', '0+10x30'),
          histogram('60', '0+10x30'),
          histogram('+Inf', '0+10x30'),
        ],
        alert_rule_test: [{ eval_time: '20m', alertname: 'LanekeeperHighLatency', exp_alerts: [] }],
      },
    ]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });
});
