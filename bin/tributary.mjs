#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader, so `npx tributary` needs no build step.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

// The event validators are generated from schemas/events at build time (no code generation at
// run time, ARCHITECTURE §4); a fresh clone has not built them yet, so build them once here.
const generated = fileURLToPath(new URL('../schemas/generated/validators.js', import.meta.url));
if (!existsSync(generated)) {
  const script = fileURLToPath(new URL('../scripts/build-validators.ts', import.meta.url));
  const built = spawnSync(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (built.status !== 0) {
    console.error('tributary: could not generate the event validators (npm run build:schemas shows why)');
    process.exit(1);
  }
}

register();
const { main } = await import('../core/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
