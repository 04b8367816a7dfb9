import { defineConfig } from 'vitest/config';

// One runner for every workspace. Tests talk to real local servers (Redis, PostgreSQL), so
// files run in parallel only as far as each test keeps to its own keys and schemas.
export default defineConfig({
  test: {
    include: [
      'contract/**/*.test.ts',
      'proxy/**/*.test.ts',
      'test/**/*.test.ts',
      'control-plane/**/*.test.ts',
      'charts/**/*.test.ts',
      'examples/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
