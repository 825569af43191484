import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.spec.ts'],
    // The addon is loaded in child processes (napi-rs convention): a crash cannot take the runner
    // down, and every file gets a fresh module instance.
    pool: 'forks',
    testTimeout: 30_000,
  },
})
