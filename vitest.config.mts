import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import { STUB_HMAC_SECRET, type StubBackendInfo } from './worker/test/stub-backend/node/global-setup.ts';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          environment: 'node',
          include: ['test/node/**/*.test.ts', 'gpu-backend/**/*.test.ts', 'shared/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // the whole system over real HTTP: backend processes and wrangler dev; files run one at a time
          name: 'e2e',
          environment: 'node',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        plugins: [
          cloudflareTest(async ({ inject }) => {
            const stub: StubBackendInfo = inject('stubBackend');
            return {
              wrangler: { configPath: './wrangler.toml' },
              miniflare: {
                // Test values of the secrets (wrangler dev reads them from .dev.vars) and a default backend: the stub.
                bindings: {
                  BACKEND_HMAC_SECRET: STUB_HMAC_SECRET,
                  ADMIN_TOKEN: 'test-admin-token',
                  BACKENDS: JSON.stringify([{ url: `${stub.url}/ok/default`, weight: 1 }]),
                  TEST_MIGRATIONS: await readD1Migrations('./worker/migrations'),
                  // fuzz knobs (worker/test/fuzz-*.test.ts, read in worker/test/helpers/fuzz.ts): `npm run soak` scales the case count; a seed replays a run
                  REALIGN_FUZZ_SCALE: process.env.REALIGN_FUZZ_SCALE ?? '1',
                  REALIGN_FUZZ_SEED: process.env.REALIGN_FUZZ_SEED ?? '',
                },
              },
            };
          }),
        ],
        test: {
          name: 'workers',
          include: ['worker/**/*.test.ts'],
          globalSetup: ['./scripts/build-playground.ts', './worker/test/stub-backend/node/global-setup.ts'],
          setupFiles: ['./worker/test/setup/apply-migrations.ts'],
          testTimeout: 20_000,
          // setups create tenants through the admin API one request at a time; under a loaded CI machine that takes a while
          hookTimeout: 60_000,
          // An isolate per file. One shared isolate saved ~2 s of module loading per file, but the shared isolate
          // grew slower with every file run before (fuzz-api: 7.6 s alone, 95 s after nine other files; the whole
          // project took 245 s shared in a quiet full run, 113 s isolated on a busier machine). The cost is the
          // pool's, not the worker's: vitest-pool-workers 0.23's createProxyPrototypeClass wraps the SELF entrypoint
          // class's and the RateLimiter wrapper class's prototype in one more Proxy per instance (per SELF call, per
          // new Durable Object), so every later property read walks all the layers (cloudflare/workers-sdk#15092,
          // fixed only in the renamed @cloudflare/vitest-plugin). `wrangler dev` runs the same requests in constant time.
          isolate: true,
        },
      },
    ],
  },
});
