import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('../..', import.meta.url));

// Runs test/workers/** inside workerd with the bindings declared in wrangler.toml.
export default defineConfig({
  root,
  plugins: [cloudflareTest({ wrangler: { configPath: `${root}/wrangler.toml` } })],
  test: {
    name: 'workers',
    root,
    include: ['test/workers/**/*.test.ts'],
  },
});
