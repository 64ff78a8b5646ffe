/**
 * `npm run chaos`: randomized, seeded fault rounds against a real pipeline, or a named scenario.
 *
 *   npm run chaos                                   20 rounds, random seed
 *   npm run chaos -- --seed 7 --rounds 5            replay rounds 1..5 of seed 7
 *   npm run chaos -- --seed 7 --round 4             replay round 4 of seed 7 alone
 *   npm run chaos -- --scenario outage-under-load --runs 10
 *
 * Options: --round-seconds S (load per random round, default 60), --connections N, --rate B
 * (batches/s; 0 = full rate), --edge-processes N (default 2), --drain-seconds S, --report FILE (JSON),
 * --keep (keep the work directory of a run without violations; one with violations is always kept).
 * CLICKHOUSE_URL set: the aggregator host writes to that server instead of embedded ClickHouse.
 * Exit code 1 when any round found a violation.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FAULT_KINDS } from './faults.ts';
import { faultsByKind, runChaos, type ChaosReport } from './harness.ts';
import { DEFAULT_LOAD, outageUnderLoad, randomRounds } from './plans.ts';
import type { RoundPlan } from './harness.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    rounds: { type: 'string' },
    round: { type: 'string' },
    scenario: { type: 'string' },
    runs: { type: 'string' },
    'round-seconds': { type: 'string' },
    connections: { type: 'string' },
    rate: { type: 'string' },
    'edge-processes': { type: 'string' },
    'drain-seconds': { type: 'string' },
    report: { type: 'string' },
    keep: { type: 'boolean' },
  },
});

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

const seed = int('seed', values.seed, Math.floor(Math.random() * 1_000_000));
const scenario = values.scenario ?? 'random';
const load = { ...DEFAULT_LOAD, connections: int('connections', values.connections, DEFAULT_LOAD.connections), batchesPerSecond: int('rate', values.rate, DEFAULT_LOAD.batchesPerSecond) };
let plans: RoundPlan[];
let replay: string;
if (scenario === 'outage-under-load') {
  const runs = int('runs', values.runs, 1);
  plans = Array.from({ length: runs }, (_, i) =>
    outageUnderLoad(i + 1, { connections: int('connections', values.connections, 50), batchesPerSecond: int('rate', values.rate, 0) }),
  );
  replay = `npm run chaos -- --scenario outage-under-load --runs ${runs}`;
} else if (scenario === 'random') {
  const loadMs = int('round-seconds', values['round-seconds'], 60) * 1000;
  if (loadMs < 45_000) throw new Error('--round-seconds must be at least 45: faults last up to 30 s and need time to recover inside the round');
  if (values.round !== undefined) {
    const r = int('round', values.round, 1);
    plans = randomRounds(seed, r, r, loadMs, load);
  } else {
    plans = randomRounds(seed, 1, int('rounds', values.rounds, 20), loadMs, load);
  }
  replay = `npm run chaos -- --seed ${seed}${values.round !== undefined ? ` --round ${values.round}` : ` --rounds ${plans.length}`}`;
} else {
  throw new Error(`unknown --scenario ${JSON.stringify(scenario)}: use random (default) or outage-under-load`);
}

const started = Date.now();
const report: ChaosReport = await runChaos({
  seed,
  rounds: plans,
  edgeProcesses: int('edge-processes', values['edge-processes'], 2),
  ...(process.env.CLICKHOUSE_URL ? { clickhouseUrl: process.env.CLICKHOUSE_URL } : {}),
  drainTimeoutMs: int('drain-seconds', values['drain-seconds'], 180) * 1000,
  keepWorkDir: values.keep === true,
});
const byKind = faultsByKind(report);
const total = (f: (r: ChaosReport['rounds'][number]) => number): number => report.rounds.reduce((n, r) => n + f(r), 0);
console.log(`
chaos summary (seed ${seed}, ${scenario}): ${report.rounds.length} round(s) in ${((Date.now() - started) / 60_000).toFixed(1)} min
  faults injected: ${FAULT_KINDS.map((k) => `${k} ${byKind[k]}`).join(', ')}
  events: sent ${total((r) => r.sentEvents)}, acknowledged ${total((r) => r.ackedEvents)}, counted ${total((r) => r.countedEvents)}; ${total((r) => r.requests)} requests, ${total((r) => r.retries)} retries, ${total((r) => r.resends)} re-sent acknowledged batches
  violations: ${report.violations}${report.violations ? ` in round(s) ${report.rounds.filter((r) => r.violations.length).map((r) => r.round).join(', ')}` : ''}
  replay: ${replay}`);
for (const r of report.rounds) for (const v of r.violations) console.log(`  round ${r.round}: ${v.kind}${v.event ? ` [${v.event}]` : ''}: ${v.detail}`);
if (values.report) writeFileSync(values.report, `${JSON.stringify(report, null, 2)}\n`);
process.exitCode = report.violations > 0 ? 1 : 0;
