import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: ['packages/*', 'packaging'],
    reporters: ['default', './plain-summary-reporter.ts'],
  },
});
