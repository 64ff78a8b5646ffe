/**
 * The hostile-input table (test/support/hostile-cases.ts) against the Node edge as it runs:
 * `startNodeEdge` (node:http, the fast path, the Hono fallback and the server's limits) with
 * in-memory sinks. The Deno and Workers runs of the same table are in
 * test/integration/hostile-deno.test.ts and test/workers/hostile-inputs.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEdgeConfig } from '../../../edge/config.ts';
import { startNodeEdge, type RunningNodeEdge } from '../../../edge/node/server.ts';
import { expectedOn, HOSTILE_CASES, HOSTILE_WRITE_KEY, outcomeOf, toRequest } from '../../support/hostile-cases.ts';
import { fakeSink } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'tributary-hostile-'));
let edge: RunningNodeEdge;

beforeAll(async () => {
  const config = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: `${HOSTILE_WRITE_KEY}:demo`, PSEUDONYM_SALT: 'hostile-node-salt-0123456789', FLUSH_INTERVAL_MS: '20', DEDUP_DIR: dir });
  if (!config.ok) throw new Error(config.errors.join('\n'));
  edge = await startNodeEdge({ config: config.config, brokers: [], port: 0, hostname: '127.0.0.1', sink: fakeSink(), log: () => undefined });
});

afterAll(async () => {
  await edge?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('hostile inputs on the Node edge', () => {
  it.each(HOSTILE_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const expected = expectedOn(c, 'node');
    const res = await fetch(toRequest(edge.url, await c.build()));
    const actual = await outcomeOf(res, expected);
    expect(actual).toEqual({ ...expected, json: expected.status !== 204 });
  });
});

/** Status per error code, as the tables of docs/EDGE.md "Errors" list them. */
const DOCUMENTED = new Set([...readFileSync(new URL('../../../docs/EDGE.md', import.meta.url), 'utf8').matchAll(/^\| (\d{3}) \| `([a-z0-9_]+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`));

describe('docs/EDGE.md', () => {
  it('documents every status and error code the hostile-input table expects on any runtime', () => {
    const answers = HOSTILE_CASES.flatMap((c) => [c.expect, ...Object.values(c.differs ?? {})]).filter((o) => o.code !== undefined);
    const missing = [...new Set(answers.map((o) => `${o.status} ${o.code}`))].filter((a) => !DOCUMENTED.has(a));
    expect(missing).toEqual([]);
  });
});
