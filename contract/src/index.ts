/**
 * @lanekeeper/contract: everything the proxy and the control plane must agree on (and the
 * guards both run: on JSON they are sent, json-nesting.ts; on their sockets, socket-limits.ts),
 * nothing else. Each side depends on this package by name and never on the other's sources,
 * so either can change its insides freely; a change here is a change to both.
 */
export * from './allow-paths.js';
export * from './model-routing.js';
export * from './periods.js';
export * from './redis-layout.js';
export * from './snapshot.js';
export * from './tenancy.js';
export * from './usage-event.js';
export * from './logging.js';
export * from './telemetry.js';
export * from './json-nesting.js';
export * from './csv.js';
export * from './socket-limits.js';
export * from './settled-within.js';
