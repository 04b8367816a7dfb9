/**
 * The `telemetry:` config block and the OTEL_* environment: hostile values are refused with a
 * message naming the key, and config wins over the environment key by key.
 */
import { resolveTelemetry, TelemetryEnvError } from '@lanekeeper/contract';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/schema.js';
import { ConfigError } from '../src/errors.js';
import { baseConfig } from './helpers/harness.js';

function withTelemetry(telemetry: unknown) {
  return parseConfig({ ...baseConfig('http://127.0.0.1:9'), telemetry });
}

function problemsOf(telemetry: unknown): string {
  try {
    withTelemetry(telemetry);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('the config was accepted');
}

describe('the telemetry config block', () => {
  it('accepts an http endpoint, a ratio, a service name and a protocol', () => {
    const config = withTelemetry({
      otlp_endpoint: 'http://collector:4318',
      sample_ratio: 0.25,
      service_name: 'edge-proxy',
      protocol: 'http/json',
    });
    expect(config.telemetry).toEqual({
      otlp_endpoint: 'http://collector:4318',
      sample_ratio: 0.25,
      service_name: 'edge-proxy',
      protocol: 'http/json',
    });
  });

  it.each([
    [{ sample_ratio: 1.5 }, 'telemetry.sample_ratio', 'from 0 to 1'],
    [{ sample_ratio: -1 }, 'telemetry.sample_ratio', 'from 0 to 1'],
    [{ sample_ratio: 'abc' }, 'telemetry.sample_ratio', 'from 0 to 1'],
    [{ otlp_endpoint: 'not a url' }, 'telemetry.otlp_endpoint', 'http:// or https://'],
    [{ otlp_endpoint: 'file:///etc/passwd' }, 'telemetry.otlp_endpoint', 'http:// or https://'],
    [{ otlp_endpoint: 'collector:4318' }, 'telemetry.otlp_endpoint', 'http:// or https://'],
    [{ service_name: '' }, 'telemetry.service_name', ''],
    [{ exporter: 'zipkin' }, 'telemetry', 'exporter'],
    [{ protocol: 'grpc' }, 'telemetry.protocol', 'http/protobuf or http/json'],
    [{ protocol: 'HTTP/JSON' }, 'telemetry.protocol', 'http/protobuf or http/json'],
    [{ protocol: 'http/json\n{"level":"fatal"}' }, 'telemetry.protocol', 'http/protobuf or http/json'],
    [{ protocol: 1 }, 'telemetry.protocol', 'http/protobuf or http/json'],
  ])('refuses %j at %s', (telemetry, path, message) => {
    const text = problemsOf(telemetry);
    expect(text).toContain(path);
    expect(text).toContain(message);
  });
});

describe('resolving telemetry settings', () => {
  it('is off without an endpoint anywhere', () => {
    expect(resolveTelemetry(undefined, {}, 'lanekeeper-proxy')).toBeUndefined();
    expect(resolveTelemetry({ sample_ratio: 0.5 }, {}, 'lanekeeper-proxy')).toBeUndefined();
  });

  it('reads the standard OTEL_* variables', () => {
    expect(
      resolveTelemetry(
        undefined,
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
          OTEL_TRACES_SAMPLER_ARG: '0.1',
          OTEL_SERVICE_NAME: 'from-env',
        },
        'lanekeeper-proxy',
      ),
    ).toEqual({
      endpoint: 'http://otel:4318',
      tracesUrl: 'http://otel:4318/v1/traces',
      sampleRatio: 0.1,
      parentBased: true,
      serviceName: 'from-env',
      resourceAttributes: {},
      protocol: 'http/protobuf',
    });
  });

  it('lets config win over the environment key by key', () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
      OTEL_TRACES_SAMPLER_ARG: '0.1',
      OTEL_SERVICE_NAME: 'from-env',
    };
    expect(resolveTelemetry({ sample_ratio: 1 }, env, 'x')).toEqual({
      endpoint: 'http://otel:4318',
      tracesUrl: 'http://otel:4318/v1/traces',
      sampleRatio: 1,
      parentBased: true,
      serviceName: 'from-env',
      resourceAttributes: {},
      protocol: 'http/protobuf',
    });
    expect(resolveTelemetry({ otlp_endpoint: 'https://mine:4318', service_name: 'cfg' }, env, 'x')).toEqual({
      endpoint: 'https://mine:4318',
      tracesUrl: 'https://mine:4318/v1/traces',
      sampleRatio: 0.1,
      parentBased: true,
      serviceName: 'cfg',
      resourceAttributes: {},
      protocol: 'http/protobuf',
    });
  });

  it('defaults to every trace, the service default name and protobuf', () => {
    expect(resolveTelemetry(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' }, 'svc')).toEqual({
      endpoint: 'http://otel:4318',
      tracesUrl: 'http://otel:4318/v1/traces',
      sampleRatio: 1,
      parentBased: true,
      serviceName: 'svc',
      resourceAttributes: {},
      protocol: 'http/protobuf',
    });
  });

  it('takes OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as the traces URL itself, over the general endpoint', () => {
    const url = (config: { otlp_endpoint?: string }, env: Record<string, string>) =>
      resolveTelemetry(config, env, 'svc')?.tracesUrl;
    expect(url({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://otel:4318/custom/spans' })).toBe(
      'http://otel:4318/custom/spans',
    );
    expect(
      url(
        {},
        {
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: ' https://traces.example:443/otlp ',
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
        },
      ),
    ).toBe('https://traces.example:443/otlp');
    expect(url({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318/' })).toBe('http://otel:4318/v1/traces');
    // The signal path goes on the base's path; a query (a collector token) stays a query.
    expect(url({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318/?token=abc' })).toBe(
      'http://otel:4318/v1/traces?token=abc',
    );
    expect(url({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp/?t=1&u=%2F' })).toBe(
      'https://gw.example/otlp/v1/traces?t=1&u=%2F',
    );
    expect(url({ otlp_endpoint: 'http://mine:4318/base?token=x' }, {})).toBe(
      'http://mine:4318/base/v1/traces?token=x',
    );
    // The base is a base, as the exporter spec says, even one that ends in /v1/traces; the
    // config's key may also be the traces URL itself.
    expect(url({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318/v1/traces' })).toBe(
      'http://otel:4318/v1/traces/v1/traces',
    );
    expect(url({ otlp_endpoint: 'http://mine:4318/v1/traces/' }, {})).toBe('http://mine:4318/v1/traces');
    // The config's endpoint is a base, and wins over both variables.
    expect(
      url(
        { otlp_endpoint: 'http://mine:4318' },
        { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://otel:4318/x' },
      ),
    ).toBe('http://mine:4318/v1/traces');
  });

  it('reads OTEL_TRACES_SAMPLER: parent-based or not, and the ratio the fixed ones set', () => {
    const sampling = (sampler: string, extra: Record<string, string> = {}, config = {}) => {
      const settings = resolveTelemetry(
        config,
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', OTEL_TRACES_SAMPLER: sampler, ...extra },
        'svc',
      );
      return settings && { ratio: settings.sampleRatio, parentBased: settings.parentBased };
    };
    expect(sampling('always_on')).toEqual({ ratio: 1, parentBased: false });
    expect(sampling('always_off', { OTEL_TRACES_SAMPLER_ARG: '0.5' })).toEqual({
      ratio: 0,
      parentBased: false,
    });
    expect(sampling('traceidratio', { OTEL_TRACES_SAMPLER_ARG: '0.25' })).toEqual({
      ratio: 0.25,
      parentBased: false,
    });
    expect(sampling('parentbased_always_on')).toEqual({ ratio: 1, parentBased: true });
    expect(sampling('parentbased_always_off')).toEqual({ ratio: 0, parentBased: true });
    expect(sampling(' ParentBased_TraceIdRatio ', { OTEL_TRACES_SAMPLER_ARG: '0.5' })).toEqual({
      ratio: 0.5,
      parentBased: true,
    });
    // The ratio's argument is not read by the samplers that fix the ratio (the spec's rule).
    expect(sampling('always_on', { OTEL_TRACES_SAMPLER_ARG: 'not a number' })).toEqual({
      ratio: 1,
      parentBased: false,
    });
    // The config's sample_ratio wins, as every config key does.
    expect(sampling('always_off', {}, { sample_ratio: 0.3 })).toEqual({ ratio: 0.3, parentBased: false });
    expect(sampling('')).toEqual({ ratio: 1, parentBased: true });
  });

  it('is off when OTEL_TRACES_EXPORTER is none, and on when it names otlp', () => {
    const env = (exporter: string) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
      OTEL_TRACES_EXPORTER: exporter,
    });
    expect(resolveTelemetry(undefined, env('none'), 'svc')).toBeUndefined();
    expect(resolveTelemetry({ otlp_endpoint: 'http://a:4318' }, env(' NONE '), 'svc')).toBeUndefined();
    expect(resolveTelemetry(undefined, env('otlp'), 'svc')?.tracesUrl).toBe('http://otel:4318/v1/traces');
    expect(resolveTelemetry(undefined, env('otlp,none'), 'svc')).toBeDefined();
    expect(resolveTelemetry(undefined, env('console, otlp'), 'svc')).toBeDefined();
    expect(resolveTelemetry(undefined, env('none,none'), 'svc')).toBeUndefined();
    expect(resolveTelemetry(undefined, env(''), 'svc')).toBeDefined();
  });

  it('reads the protocol from the traces variable first, then the general one, and config over both', () => {
    const protocol = (config: { protocol?: 'http/json' | 'http/protobuf' }, env: Record<string, string>) =>
      resolveTelemetry(config, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', ...env }, 'svc')?.protocol;
    expect(protocol({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toBe('http/json');
    expect(protocol({}, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: ' http/json ' })).toBe('http/json');
    expect(
      protocol(
        {},
        { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' },
      ),
    ).toBe('http/protobuf');
    expect(protocol({ protocol: 'http/json' }, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' })).toBe(
      'http/json',
    );
    // The config's choice stands even over a variable that would be refused.
    expect(protocol({ protocol: 'http/protobuf' }, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBe(
      'http/protobuf',
    );
  });

  it('reads OTEL_BSP_SCHEDULE_DELAY in whole milliseconds, from 1 to an hour', () => {
    const delay = (value: string) =>
      resolveTelemetry(
        undefined,
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_BSP_SCHEDULE_DELAY: value },
        'svc',
      )?.scheduleDelayMs;
    expect(delay('250')).toBe(250);
    expect(delay(' 1 ')).toBe(1);
    expect(delay('3600000')).toBe(3_600_000);
    expect(delay('')).toBeUndefined();
    for (const bad of ['0', '3600001', '-1', '2.5', '1e3', 'Infinity', 'NaN', '\u0035'.normalize() + 'x'])
      expect(() => delay(bad), bad).toThrow(TelemetryEnvError);
  });

  it('reads OTEL_RESOURCE_ATTRIBUTES: percent-decoded values, service.name below OTEL_SERVICE_NAME and the config', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' };
    const attributes = 'service.name=from-resource, region=eu%2Dwest , note=a%20b%2Cc,,';
    expect(
      resolveTelemetry(undefined, { ...base, OTEL_RESOURCE_ATTRIBUTES: attributes }, 'svc'),
    ).toMatchObject({
      serviceName: 'from-resource',
      resourceAttributes: { region: 'eu-west', note: 'a b,c' },
    });
    expect(
      resolveTelemetry(
        undefined,
        { ...base, OTEL_RESOURCE_ATTRIBUTES: attributes, OTEL_SERVICE_NAME: 'env' },
        'svc',
      )?.serviceName,
    ).toBe('env');
    expect(
      resolveTelemetry({ service_name: 'cfg' }, { ...base, OTEL_RESOURCE_ATTRIBUTES: attributes }, 'svc')
        ?.serviceName,
    ).toBe('cfg');
    expect(resolveTelemetry(undefined, base, 'svc')?.resourceAttributes).toEqual({});
  });

  it.each([
    ['a pair without =', 'region'],
    ['bad percent-encoding', 'region=%E0%A4%A'],
    ['a key that is no name', '__proto__=x'],
    ['an empty key', '=x'],
    ['a key with a space', 'my key=x'],
    ['too many attributes', Array.from({ length: 65 }, (_, i) => `k${i}=v`).join(',')],
    ['a value over 1,024 characters', `k=${'v'.repeat(1_025)}`],
  ])('refuses OTEL_RESOURCE_ATTRIBUTES with %s, naming it', (_name, value) => {
    expect(() =>
      resolveTelemetry(
        undefined,
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', OTEL_RESOURCE_ATTRIBUTES: value },
        'svc',
      ),
    ).toThrow(/OTEL_RESOURCE_ATTRIBUTES/);
  });

  it('is off when OTEL_SDK_DISABLED is true, on when false, and refuses anything else', () => {
    const config = { otlp_endpoint: 'http://a:4318' };
    expect(resolveTelemetry(config, { OTEL_SDK_DISABLED: ' TRUE ' }, 'svc')).toBeUndefined();
    expect(resolveTelemetry(config, { OTEL_SDK_DISABLED: 'false' }, 'svc')).toBeDefined();
    expect(resolveTelemetry(config, { OTEL_SDK_DISABLED: '' }, 'svc')).toBeDefined();
    for (const value of ['yes', '1', 'on', 'disabled'])
      expect(() => resolveTelemetry(config, { OTEL_SDK_DISABLED: value }, 'svc')).toThrow(
        'OTEL_SDK_DISABLED must be true or false',
      );
  });

  it.each<[Record<string, string>, string]>([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'file:///tmp/x' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'nonsense' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_SAMPLER_ARG: '1.5' },
      'OTEL_TRACES_SAMPLER_ARG',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_SAMPLER_ARG: '-1' },
      'OTEL_TRACES_SAMPLER_ARG',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_SAMPLER_ARG: 'abc' },
      'OTEL_TRACES_SAMPLER_ARG',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_SAMPLER_ARG: '0x1' },
      'OTEL_TRACES_SAMPLER_ARG',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      'OTEL_EXPORTER_OTLP_PROTOCOL',
    ],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf\u001b[2J',
      },
      'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
    ],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'json',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      },
      'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
    ],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
    [
      {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'file:///etc/passwd',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318',
      },
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    ],
    // Samplers the proxy does not have, and values that are no sampler at all.
    ...['jaeger_remote', 'xray', '__proto__', 'constructor', 'always_on\n{"level":"fatal"}'].map(
      (sampler) =>
        [
          { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_SAMPLER: sampler },
          'OTEL_TRACES_SAMPLER',
        ] as [Record<string, string>, string],
    ),
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318',
        OTEL_TRACES_SAMPLER: 'traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '2',
      },
      'OTEL_TRACES_SAMPLER_ARG',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_EXPORTER: 'console' },
      'OTEL_TRACES_EXPORTER',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_EXPORTER: 'zipkin,none' },
      'OTEL_TRACES_EXPORTER',
    ],
  ])('refuses the environment %j', (env, variable) => {
    expect(() => resolveTelemetry(undefined, env, 'svc')).toThrow(TelemetryEnvError);
    expect(() => resolveTelemetry(undefined, env, 'svc')).toThrow(variable);
  });
});
