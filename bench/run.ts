/** `npm run bench`: every benchmark, one after the other, each writing its docs/BENCHMARKS.md section. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

for (const suite of ['edge', 'aggregator']) {
  const script = fileURLToPath(new URL(`./${suite}/run.ts`, import.meta.url));
  console.log(`\n== bench:${suite} ==`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
