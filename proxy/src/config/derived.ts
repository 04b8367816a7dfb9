/**
 * What a stage works out from the config once, not on every request: the config object is
 * replaced whole on a reload, so a value kept per object is never stale, and the old one goes
 * with its config.
 */
import type { Config } from './schema.js';

/** `derive`, run once per config object and remembered while that config lives. */
export function perConfig<T>(derive: (config: Config) => T): (config: Config) => T {
  const kept = new WeakMap<Config, T>();
  return (config) => {
    let value = kept.get(config);
    if (value === undefined) {
      value = derive(config);
      kept.set(config, value);
    }
    return value;
  };
}
