import { describe, expect, it } from 'vitest';
import {
  checkTargets,
  cpuPerRequest,
  formatChecks,
  formatTable,
  ratiosToFloor,
  type ScenarioResult,
} from './report.js';

function scenario(rps: number, cpuUsPerRequest: number, p99Ms = 2): ScenarioResult {
  return { requests: rps * 5, seconds: 5, rps, errors: 0, p50Ms: 1, p99Ms, cpuUsPerRequest };
}

const floor = { json: scenario(1000, 100, 2), stream: scenario(500, 200), paced: scenario(500, 300, 2) };

describe('benchmark report', () => {
  it('turns a CPU-seconds delta into microseconds per request', () => {
    expect(cpuPerRequest(0.5, 10_000)).toBe(50);
    expect(cpuPerRequest(1, 0)).toBeUndefined();
  });

  it('computes ratios and added p99 against the floor of the same run', () => {
    const ratios = ratiosToFloor(
      { json: scenario(1200, 80), stream: scenario(600, 180), paced: scenario(500, 250, 2.5) },
      floor,
    );
    expect(ratios).toEqual({
      json: 1.2,
      stream: 1.2,
      cpuJson: 0.8,
      cpuStream: 0.9,
      addedP99Ms: 0.5,
      addedBurstP99Ms: undefined,
    });
    const burst = ratiosToFloor({ burst: scenario(500, 250, 5.25) }, floor);
    expect(burst.addedBurstP99Ms).toBe(3.25);
  });

  it.each([
    ['memory mode at the targets', 0.95, 1.1, 1.0, true],
    ['memory mode slower than the floor on JSON', 0.94, 1.3, 0.9, false],
    ['memory mode short of 1.1x on SSE', 1.0, 1.09, 0.9, false],
    ['memory mode dearer per request than the floor', 1.2, 1.3, 1.01, false],
  ])('marks %s as met only when every memory target holds', (_name, json, stream, cpu, met) => {
    const checks = checkTargets({
      'lanekeeper-memory': { json, stream, cpuJson: cpu, cpuStream: cpu, addedP99Ms: 5 },
    });
    expect(checks.every((c) => c.met)).toBe(met);
    expect(checks).toHaveLength(3);
  });

  it('holds Redis mode to 0.85x the floor and 2 ms of added p99, after a burst too', () => {
    const redis = { stream: 0.5, cpuJson: 2, cpuStream: 2 };
    const checks = checkTargets({
      'lanekeeper-redis': { ...redis, json: 0.84, addedP99Ms: 2, addedBurstP99Ms: 2.01 },
    });
    expect(checks.map((c) => c.met)).toEqual([false, true, false]);
    const met = checkTargets({
      'lanekeeper-redis': { ...redis, json: 0.85, addedP99Ms: 1.9, addedBurstP99Ms: undefined },
    });
    expect(met.map((c) => c.met)).toEqual([true, true, null]);
  });

  it.each([
    [9.9, true],
    [10, true],
    [10.1, false],
  ])('holds tracing to 10 us a request: %s us is met %s', (usPerRequest, met) => {
    const windows = [
      { pair: 1, offUs: 100, onUs: 100 + usPerRequest - 1, tracedRequests: 8000 },
      { pair: 2, offUs: 120, onUs: 120 + usPerRequest, tracedRequests: 8000 },
    ];
    const pairMedians = [usPerRequest - 1, usPerRequest];
    const [check] = checkTargets({}, { traceCost: { usPerRequest, windows, rate: 1000, pairMedians } });
    expect(check).toMatchObject({ target: 'traced', met });
    expect(check?.measured).toContain(
      `${usPerRequest.toFixed(1)} us (median of 2 windows side by side at 1000 req/s: ${(usPerRequest - 1).toFixed(1)}, ${usPerRequest.toFixed(1)}; over 2 process pairs, their medians ${(usPerRequest - 1).toFixed(1)}, ${usPerRequest.toFixed(1)})`,
    );
  });

  it('leaves tracing out when it was not measured', () => {
    expect(checkTargets({})).toEqual([]);
  });

  it('holds 10,000 tenants to 10% more CPU per request than one, and Redis to 4 KiB a tenant', () => {
    const results = {
      'lanekeeper-memory': { json: scenario(1000, 100), stream: scenario(500, 200) },
      'lanekeeper-memory-10k': { json: scenario(1000, 110), stream: scenario(500, 222) },
    };
    const [many, bytes, over] = checkTargets(
      {},
      {
        results,
        redisMemory: {
          'lanekeeper-redis-10k': {
            stateBytes: 3_000_000,
            replayGuardBytes: 1_096_000,
            tenants: 1000,
            stateAvgBytes: 3000,
            stateMaxBytes: 3100,
            replayGuardAvgBytes: 1096,
            replayGuardMaxBytes: 1200,
          },
          'lanekeeper-redis': {
            stateBytes: 6000,
            replayGuardBytes: 2194,
            tenants: 2,
            stateAvgBytes: 3000,
            stateMaxBytes: 3100,
            replayGuardAvgBytes: 1097,
            replayGuardMaxBytes: 1200,
          },
        },
      },
    );
    expect(many).toMatchObject({ target: 'memory 10k tenants', met: false });
    expect(many?.measured).toBe('1.10x json, 1.11x stream');
    expect(bytes).toMatchObject({ target: 'redis-10k', met: true });
    expect(over).toMatchObject({ target: 'redis', met: false });
    expect(over?.measured).toContain('4097 bytes over 2 tenants');
  });

  it('leaves targets of scenarios that did not run unjudged', () => {
    const checks = checkTargets({
      'lanekeeper-memory': {
        json: 1.1,
        stream: undefined,
        cpuJson: 0.9,
        cpuStream: undefined,
        addedP99Ms: undefined,
      },
    });
    expect(checks.map((c) => c.met)).toEqual([true, null, true]);
    expect(formatChecks(checks)).toContain('NOT RUN  memory: streaming >= 1.1x floor (measured not run)');
    expect(formatChecks(checks)).toContain('CPU per request <= floor (measured 0.90x json, not run stream)');
    const rows = formatTable(
      { floor: { json: floor.json }, 'lanekeeper-memory': { json: floor.json } },
      {
        'lanekeeper-memory': {
          json: 1,
          stream: undefined,
          cpuJson: 1,
          cpuStream: undefined,
          addedP99Ms: undefined,
        },
      },
    ).split('\n');
    expect(rows[2]).toMatch(/^\| floor +\| 1000 +\| 1\.00 +\| n\/a +\| n\/a /);
    expect(rows[3]).toMatch(/\| - +\| 2\.00 +\|$/);
  });

  it('prints one table row per target with the floor at 1.00', () => {
    const table = formatTable({ floor, 'lanekeeper-memory': floor }, {});
    const rows = table.split('\n');
    expect(rows).toHaveLength(4);
    expect(rows[2]).toMatch(/^\| floor +\| 1000 +\| 1\.00 /);
  });
});
