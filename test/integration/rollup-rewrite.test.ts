import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addToPartial, emptyPartial, hash64 } from '../../shared/algebra/index.ts';
import type { Emission } from '../../core/aggregator/emission.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createEmissionWriter } from '../../core/clickhouse/emission-writer.ts';
import { openTestClickHouse } from './helpers/aggregator-harness.ts';

// agg_hour and agg_day are filled by materialized views inside the agg_minute insert, not by
// inserts of their own. A process killed mid-insert can leave agg_minute written and a rollup
// not. The restore re-writes the epoch under the same token (ADR 0003): ClickHouse must then drop
// the agg_minute block, fill the rollup that missed it, and not add it again to the one that had
// it. That is what deduplicate_blocks_in_dependent_materialized_views=1 gives (each view checks
// its own copy of the token); without it, this engine re-pushes the block to every view.
let ch: ClickHouse;

beforeAll(async () => {
  ch = await openTestClickHouse('trib-rollup-rewrite');
});

afterAll(async () => {
  await ch?.close();
});

async function sums(site: string): Promise<{ minute: number; hour: number; day: number }> {
  const rs = await ch.client.query({
    query: `SELECT (SELECT sum(events) FROM agg_minute WHERE site = {site:String}) AS minute,
                   (SELECT sum(events) FROM agg_hour WHERE site = {site:String}) AS hour,
                   (SELECT sum(events) FROM agg_day WHERE site = {site:String}) AS day`,
    query_params: { site },
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<{ minute: string | number | null; hour: string | number | null; day: string | number | null }>();
  return { minute: Number(row?.minute ?? 0), hour: Number(row?.hour ?? 0), day: Number(row?.day ?? 0) };
}

function emissionOf(site: string, events: number): Emission {
  const partial = emptyPartial();
  for (let i = 0; i < events; i++) addToPartial(partial, { user: hash64(`u${i}`), value: 1 });
  return { deltas: [{ site, event: 'e', windowStartMs: Date.UTC(2026, 0, 1, 10, 1), windowSizeMs: 60_000, dimsKey: '', dims: [], partial }], late: [], statuses: [], watermarkMs: undefined };
}

describe('re-writing an epoch whose rollup insert was lost', () => {
  it('fills the rollup that missed it and counts nothing twice in the others', async () => {
    const writer = createEmissionWriter(ch);
    const emission = emissionOf('rollup', 9);
    const [view] = await (await ch.client.query({ query: "SELECT create_table_query AS ddl FROM system.tables WHERE database = currentDatabase() AND name = 'agg_hour_mv'", format: 'JSONEachRow' })).json<{ ddl: string }>();
    if (!view) throw new Error('agg_hour_mv not found');
    // The first write lands in agg_minute and agg_day, not in agg_hour (its view is gone meanwhile).
    await ch.client.command({ query: 'DROP VIEW agg_hour_mv' });
    try {
      await writer.write(emission, 'rollup-epoch-1', 0);
    } finally {
      await ch.client.command({ query: view.ddl });
    }
    expect(await sums('rollup')).toEqual({ minute: 9, hour: 0, day: 9 });
    // The restore's re-write, under the same token, twice (a retry of the re-write).
    await writer.write(emission, 'rollup-epoch-1', 0);
    await writer.write(emission, 'rollup-epoch-1', 0);
    expect(await sums('rollup')).toEqual({ minute: 9, hour: 9, day: 9 });
  });
});
