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
    expect(ratios).toEqual({ json: 1.2, stream: 1.2, cpuJson: 0.8, cpuStream: 0.9, addedP99Ms: 0.5 });
  });

  it.each([
    ['memory mode at the targets', 1.2, 1.2, 0.9, 0.5, true],
    ['memory mode slower than the floor', 0.9, 1.3, 0.9, 0.5, false],
    ['memory mode with too much added p99', 1.2, 1.3, 0.9, 1.5, false],
  ])('marks %s as met only when every memory target holds', (_name, json, stream, cpu, p99, met) => {
    const checks = checkTargets({
      'lanekeeper-memory': { json, stream, cpuJson: cpu, cpuStream: cpu, addedP99Ms: p99 },
    });
    expect(checks.every((c) => c.met)).toBe(met);
    expect(checks).toHaveLength(4);
  });

  it('holds Redis mode to 0.8x the floor', () => {
    const checks = checkTargets({
      'lanekeeper-redis': { json: 0.79, stream: 0.85, cpuJson: 2, cpuStream: 2, addedP99Ms: 0.2 },
    });
    expect(checks.map((c) => c.met)).toEqual([false, true, true]);
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
    expect(checks.map((c) => c.met)).toEqual([true, null, true, null]);
    expect(formatChecks(checks)).toContain('NOT RUN  memory: streaming >= 1.2x floor (measured not run)');
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
