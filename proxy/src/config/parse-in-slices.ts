/**
 * parseConfig for a reload that must not stall the proxy: the same schema and checks, but
 * the tenants (the only part that grows to thousands) are validated and frozen one slice at
 * a time, the event loop running between slices. The result equals parseConfig's, and a
 * problem is reported with the same YAML path.
 */
import { tenantSchema } from '@lanekeeper/contract';
import { ConfigError, type ConfigProblem } from '../errors.js';
import {
  configSchema,
  crossCheck,
  deepFreeze,
  problemsOf,
  type Config,
  type TenantConfig,
} from './schema.js';
import { createSlicer, forEachInSlices, type SlicePolicy } from './slices.js';

export async function parseConfigInSlices(raw: unknown, policy?: SlicePolicy): Promise<Config> {
  const input = (raw ?? {}) as Record<string, unknown>;
  const slicer = createSlicer(policy);
  // Everything but the tenants is small: one ordinary parse, tenants left for the slices.
  const rawTenants = typeof input === 'object' && Array.isArray(input.tenants) ? input.tenants : undefined;
  const head = configSchema.safeParse(rawTenants ? { ...input, tenants: [] } : input);
  const problems: ConfigProblem[] = head.success
    ? []
    : head.error.issues.flatMap((issue) => problemsOf(issue));
  const tenants: TenantConfig[] = [];
  await forEachInSlices(
    rawTenants ?? [],
    (tenant, i) => {
      const result = tenantSchema.safeParse(tenant);
      if (result.success) tenants.push(result.data);
      else for (const issue of result.error.issues) problems.push(...problemsOf(issue, ['tenants', i]));
    },
    slicer,
  );
  if (!head.success || problems.length > 0) throw new ConfigError(problems);
  const config = { ...head.data, tenants };
  await slicer.pause();
  const crossProblems = crossCheck(config);
  if (crossProblems.length > 0) throw new ConfigError(crossProblems);
  await slicer.pause();
  await forEachInSlices(tenants, deepFreeze, slicer);
  return deepFreeze(config);
}
