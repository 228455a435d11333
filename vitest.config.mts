import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// Rings (DESIGN.md §3): unit tests need nothing; integration tests start real daemons (sshd,
// gnome-keyring) on loopback; e2e drives the built app in Debian Chromium through the headless web
// mode; lab tests build network-namespace hosts and need root.
const alias = { '@shared': resolve(import.meta.dirname, 'src/shared') };
export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias },
        test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'src/**/*.test.ts'], testTimeout: 10_000 },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/electron/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 90_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'system',
          include: ['test/system/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        resolve: { alias },
        test: {
          // snapshot → restore → switch both ways on etcd 3.6, 3.5 and 3.4 (KES_MATRIX picks minors)
          name: 'matrix',
          include: ['test/matrix/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
