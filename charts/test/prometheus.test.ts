/**
 * A real Prometheus (Debian's `prometheus` package; charts/test/ensure-prometheus.sh
 * installs it) scrapes a live proxy's admin port on loopback every second. Tenant traffic
 * goes through the proxy to a fake upstream, and Prometheus' HTTP API must then answer
 * `sum by (tenant) (lanekeeper_cost_usd_total)` with each tenant's exact cost. Prometheus'
 * own linter, `promtool check metrics`, must find no problem in the proxy's /metrics.
 *
 * Without Prometheus installed the suite is skipped visibly on a developer machine and
 * fails in CI (CI=true), where .ci/run installs it first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../proxy/src/identity/credentials.js';
import { startProxy, type RunningProxy } from '../../proxy/src/main.js';
import { freePort, until } from '../../proxy/test/helpers/waiting.js';
import {
  chatCompletion,
  startFakeUpstream,
  type FakeUpstream,
} from '../../proxy/test/helpers/fake-upstream.js';

const installed = ['prometheus', 'promtool'].every(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0,
);
if (!installed && process.env.CI) {
  throw new Error('prometheus/promtool are missing: run charts/test/ensure-prometheus.sh before the tests');
}

const METRICS_TOKEN = 'prometheus-metrics-token-0123456789';
const KEYS = { acme: 'lk_prom_acme_0123456789abcdef0123', globex: 'lk_prom_globex_0123456789abcdef01' };

describe.skipIf(!installed)('Prometheus scraping a live proxy', () => {
  let upstream: FakeUpstream;
  let proxy: RunningProxy;
  let prometheus: ChildProcess | undefined;
  let prometheusUrl = '';
  let prometheusLog = '';
  let workDir = '';

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'lk-prometheus-'));
    upstream = await startFakeUpstream((req) => ({
      kind: 'json',
      body: chatCompletion((req.body as { model: string }).model, 'ok', {
        prompt_tokens: 1000,
        completion_tokens: 100,
        total_tokens: 1100,
      }),
    }));
    proxy = await startProxy({
      config: {
        listen: '127.0.0.1:0',
        admin_listen: '127.0.0.1:0',
        upstream: { url: upstream.url },
        // The token the chart's ServiceMonitor sends: Prometheus must scrape with it.
        metrics_token: METRICS_TOKEN,
        log: { level: 'silent' },
        pricing: { 'small-model': { input: 1, output: 10 }, 'big-model': { input: 5, output: 20 } },
        plans: {
          free: { models: { default: 'small-model' } },
          pro: { models: { default: 'big-model' } },
        },
        tenants: [
          { id: 'acme', plan: 'pro', api_key_sha256: [sha256Hex(KEYS.acme)] },
          { id: 'globex', plan: 'free', api_key_sha256: [sha256Hex(KEYS.globex)] },
        ],
      },
    });

    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const configPath = join(workDir, 'prometheus.yml');
    writeFileSync(
      configPath,
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: lanekeeper-proxy',
        '    authorization:',
        `      credentials: ${METRICS_TOKEN}`,
        '    static_configs:',
        `      - targets: ['${new URL(proxy.adminUrl).host}']`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${join(workDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (chunk: Buffer) => (prometheusLog += chunk.toString()));
    prometheus.stderr?.on('data', (chunk: Buffer) => (prometheusLog += chunk.toString()));
    await until('Prometheus to be ready', async () =>
      (await fetch(`${prometheusUrl}/-/ready`)).ok ? true : undefined,
    );
  }, 60_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (prometheus.exitCode === null) prometheus.kill('SIGKILL');
    }
    await proxy?.close(1_000);
    await upstream?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  async function chat(key: string): Promise<number> {
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] }),
    });
    await response.arrayBuffer();
    return response.status;
  }

  it('reports each tenant cost from sum by (tenant) (lanekeeper_cost_usd_total)', async () => {
    const statuses = [await chat(KEYS.acme), await chat(KEYS.acme), await chat(KEYS.globex)];
    expect(statuses).toEqual([200, 200, 200]);
    // acme (pro, big-model): 2 x (1000 x $5 + 100 x $20) / 1M = $0.014.
    // globex (free, small-model): (1000 x $1 + 100 x $10) / 1M = $0.002.
    const expected = { acme: 0.014, globex: 0.002 };

    const query = encodeURIComponent('sum by (tenant) (lanekeeper_cost_usd_total)');
    const costs = await until(
      `both tenants' cost in Prometheus (log: ${prometheusLog.slice(-500)})`,
      async () => {
        const body = (await (await fetch(`${prometheusUrl}/api/v1/query?query=${query}`)).json()) as {
          status: string;
          data: { result: { metric: { tenant: string }; value: [number, string] }[] };
        };
        const byTenant = Object.fromEntries(
          body.data.result.map((r) => [r.metric.tenant, Number(r.value[1])]),
        );
        const complete = Object.entries(expected).every(
          ([tenant, cost]) => Math.abs((byTenant[tenant] ?? 0) - cost) < 1e-9,
        );
        return complete ? byTenant : undefined;
      },
    );
    expect(Object.keys(costs).sort()).toEqual(['acme', 'globex']);
    expect(costs.acme).toBeCloseTo(expected.acme, 9);
    expect(costs.globex).toBeCloseTo(expected.globex, 9);
  }, 60_000);

  it('finds the process metrics under their standard names, as Node dashboards query them', async () => {
    const names = [
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ];
    for (const name of names) {
      const body = await until(`${name} in Prometheus`, async () => {
        const answer = (await (
          await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(name)}`)
        ).json()) as { data: { result: { metric: Record<string, string> }[] } };
        return answer.data.result.length > 0 ? answer : undefined;
      });
      expect(body.data.result[0]?.metric.__name__).toBe(name);
    }
    const text = await (
      await fetch(`${proxy.adminUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    ).text();
    expect(text).not.toMatch(/lanekeeper_process_|process_process_/);
  }, 60_000);

  it('sees the proxy as a healthy scrape target', async () => {
    const body = (await (await fetch(`${prometheusUrl}/api/v1/targets`)).json()) as {
      data: { activeTargets: { health: string; scrapeUrl: string }[] };
    };
    expect(body.data.activeTargets).toHaveLength(1);
    expect(body.data.activeTargets[0]).toMatchObject({
      health: 'up',
      scrapeUrl: `${proxy.adminUrl}/metrics`,
    });
  });

  it('has /metrics in which promtool check metrics finds no problem but the known prom-client gauges', async () => {
    expect((await fetch(`${proxy.adminUrl}/metrics`)).status).toBe(401);
    const text = await (
      await fetch(`${proxy.adminUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    ).text();
    expect(text).toContain('lanekeeper_cost_usd_total{tenant="acme",model="big-model"}');
    const result = spawnSync('promtool', ['check', 'metrics'], {
      input: text,
      encoding: 'utf8',
      timeout: 30_000,
    });
    const problems = `${result.stdout}${result.stderr}`
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    expect(problems).toEqual([]);
    expect(result.status).toBe(0);
  });
});
