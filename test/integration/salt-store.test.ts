import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createClickHouseSaltProvider } from '../../core/salts/clickhouse-salt-provider.ts';
import { createStaticSaltProvider } from '../../shared/salts.ts';
import { openTestClickHouse } from './helpers/aggregator-harness.ts';

const DAY = 86_400_000;
// The real clock: ClickHouse applies the TTL by its own clock, so the provider must agree with it.
const NOW = Date.now();
const EPOCH = Math.floor(NOW / DAY);
let ch: ClickHouse;

beforeAll(async () => {
  ch = await openTestClickHouse('trib-salts');
});
afterAll(async () => {
  await ch?.close();
});

const provider = (client: ClickHouseClient, now = NOW) => createClickHouseSaltProvider({ client, epochMs: DAY, retentionEpochs: 2, now: () => now });
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function saltRows(epoch: number): Promise<number> {
  const rs = await ch.client.query({ query: 'SELECT count() AS n FROM pseudonym_salts WHERE epoch_ms = {ms:UInt64} AND epoch = {e:UInt64}', query_params: { ms: DAY, e: epoch }, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: number | string }>())[0]?.n ?? 0);
}

describe('central pseudonym salts in ClickHouse', () => {
  it('gives every edge the same random salt for an epoch, even when they race to create it', async () => {
    const edges = Array.from({ length: 5 }, () => provider(ch.client));
    const answers = await Promise.all(edges.map((p) => p.saltFor(EPOCH)));
    const salts = answers.map((a) => (a.kind === 'ok' ? hex(a.salt) : a.kind));
    expect(new Set(salts).size).toBe(1);
    expect(salts[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(await saltRows(EPOCH)).toBe(1);
    // A later edge reads the stored salt rather than making a new one.
    const late = await provider(ch.client).saltFor(EPOCH);
    expect(late.kind === 'ok' && hex(late.salt)).toBe(salts[0]);
  });

  it('makes salts random: not derivable from a secret, different per epoch', async () => {
    const a = await provider(ch.client).saltFor(EPOCH - 1);
    const b = await provider(ch.client).saltFor(EPOCH);
    const derived = await createStaticSaltProvider({ secret: 'any-secret-0123456789', epochMs: DAY, retentionEpochs: 2, now: () => NOW }).saltFor(EPOCH);
    expect(a.kind === 'ok' && b.kind === 'ok' && hex(a.salt) !== hex(b.salt)).toBe(true);
    expect(b.kind === 'ok' && derived.kind === 'ok' && hex(b.salt) !== hex(derived.salt)).toBe(true);
  });

  it('refuses epochs past retention, and ClickHouse deletes their rows', async () => {
    // Two days later, EPOCH - 1 and EPOCH are past a 2-epoch retention.
    const later = provider(ch.client, NOW + 2 * DAY);
    expect(await later.saltFor(EPOCH - 1)).toEqual({ kind: 'expired' });
    expect(await later.saltFor(EPOCH + 4)).toEqual({ kind: 'expired' }); // more than one epoch ahead
    // Rows are deleted by the table's TTL once usable_until passes. An expired row may be dropped
    // at insert or at the next TTL merge; either way it must be gone after OPTIMIZE ... FINAL.
    const oldEpoch = Math.floor(Date.UTC(2020, 0, 1, 12) / DAY);
    await ch.client.insert({
      table: 'pseudonym_salts',
      values: [{ epoch_ms: DAY, epoch: oldEpoch, salt: 'ab'.repeat(32), created_at: '2020-01-01 12:00:00.000', usable_until: '2020-01-03 00:00:00' }],
      format: 'JSONEachRow',
    });
    await ch.client.command({ query: 'OPTIMIZE TABLE pseudonym_salts FINAL' });
    expect(await saltRows(oldEpoch)).toBe(0);
    // Salts still in retention survive the same merge.
    expect(await saltRows(EPOCH)).toBe(1);
  });

  it('answers unavailable, not a made-up salt, when the store cannot be reached', async () => {
    const broken = { query: () => Promise.reject(new Error('ECONNREFUSED')), insert: () => Promise.reject(new Error('ECONNREFUSED')) } as unknown as ClickHouseClient;
    const answer = await provider(broken).saltFor(EPOCH);
    expect(answer.kind).toBe('unavailable');
  });
});
