import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'packaging',
    environment: 'node',
    include: ['*.test.ts'],
    // npm pack + npm install into a scratch project + two tsc runs: seconds, not milliseconds.
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
