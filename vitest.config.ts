import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: ['tests/chaos/**/*.slow.test.ts', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two cores: integration tests bind loopback ports and spawn processes; keep it bounded.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
