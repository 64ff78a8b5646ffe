import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('../..', import.meta.url));

// Runs test/workers/** inside workerd with the bindings declared in wrangler.toml (top-level
// `vars` = local dev), plus what the tests need: a gateway key (a secret in deployments), a
// gateway URL the tests intercept, a second write key and a small pending-rows cap.
export default defineConfig({
  root,
  plugins: [
    cloudflareTest({
      wrangler: { configPath: `${root}/wrangler.toml` },
      miniflare: {
        bindings: {
          GATEWAY_SIGNING_KEY: 'workerd-test-signing-key-0123456789abcdef',
          GATEWAY_URL: 'http://gateway.test',
          TRIBUTARY_WRITE_KEYS: 'wk_demo:demo,wk_other:other',
          MAX_PENDING_ROWS: '600',
        },
      },
    }),
  ],
  test: {
    name: 'workers',
    root,
    include: ['test/workers/**/*.test.ts'],
  },
});
