import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

const shared = {
  exclude: ['**/node_modules/**', '**/dist/**'],
  testTimeout: 30_000,
  hookTimeout: 30_000,
  pool: 'forks' as const,
};

// One runner for every workspace. Tests talk to real local servers (Redis, PostgreSQL), so
// files run in parallel only as far as each test keeps to its own keys and schemas.
export default defineConfig({
  test: {
    // Vitest's default is a worker per core but one, which on a 2-core machine (CI's) is one
    // worker: most files spend their time waiting on servers and child processes, and two
    // workers there ran the suite in 435 s where one took 613 s.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      {
        test: {
          ...shared,
          name: 'postgres',
          include: [
            'contract/**/*.test.ts',
            'proxy/**/*.test.ts',
            'test/**/*.test.ts',
            'control-plane/**/*.test.ts',
            'charts/**/*.test.ts',
            'examples/**/*.test.ts',
            'bench/**/*.test.ts',
          ],
        },
      },
      {
        // The control plane's own tests again, on the embedded database (PGlite) each file
        // gets in place of a PostgreSQL database. The qdrant tests stay on PostgreSQL only:
        // they exercise Qdrant, and their database use is what the other files already cover.
        test: {
          ...shared,
          name: 'pglite',
          include: ['control-plane/test/**/*.test.ts'],
          exclude: [
            ...shared.exclude,
            'control-plane/test/qdrant/**',
            'control-plane/test/embedded-startup.test.ts',
            // PostgreSQL's own size limit on one jsonb value, ~285 MB sent to hit it.
            'control-plane/test/ledger-limits.test.ts',
            // The embedded database runs in the process and reads its clock: a replica's clock
            // apart from its database's cannot be made there (nor happen: it has no replicas).
            'control-plane/test/price-switch-clock.test.ts',
            // Writers that wait for each other are database sessions; the embedded database has one.
            'control-plane/test/migrate-concurrency.test.ts',
            'control-plane/test/ledger-conflicts.test.ts',
          ],
          env: { LANEKEEPER_TEST_DB: 'pglite' },
        },
      },
    ],
  },
});
