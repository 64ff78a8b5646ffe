import type { ClickHouseClient } from '@clickhouse/client';
import { randomBytes } from 'node:crypto';
import { saltEpoch, saltUsableUntil, type SaltLookup, type SaltProvider } from '../../shared/salts.ts';
import { toClickHouseTime } from '../clickhouse/datetime.ts';
import { errorMessage } from '../../shared/errors.ts';

export interface ClickHouseSaltProviderOptions {
  client: ClickHouseClient;
  epochMs: number;
  retentionEpochs: number;
  now: () => number;
}

/**
 * Random epoch salts kept centrally in ClickHouse (`pseudonym_salts`): unlike salts derived from
 * `PSEUDONYM_SALT`, a deleted salt cannot be recomputed, so the pseudonyms of an epoch past
 * retention become unlinkable. Every edge reading the same store gets the same salt.
 */
export function createClickHouseSaltProvider(o: ClickHouseSaltProviderOptions): SaltProvider {
  // Only answers that can't change are cached; 'unavailable' is asked again next time.
  const known = new Map<number, { salt: Uint8Array; usableUntilMs: number }>();

  async function read(epoch: number): Promise<Uint8Array | undefined> {
    const rs = await o.client.query({
      query: `SELECT salt FROM pseudonym_salts WHERE epoch_ms = {epoch_ms:UInt64} AND epoch = {epoch:UInt64}
              ORDER BY created_at, salt LIMIT 1`,
      query_params: { epoch_ms: o.epochMs, epoch },
      format: 'JSONEachRow',
    });
    const [row] = await rs.json<{ salt: string }>();
    return row ? new Uint8Array(Buffer.from(row.salt, 'hex')) : undefined;
  }

  return {
    epochMs: o.epochMs,
    async saltFor(epoch): Promise<SaltLookup> {
      const now = o.now();
      const usableUntilMs = saltUsableUntil(epoch, o.epochMs, o.retentionEpochs);
      if (!Number.isSafeInteger(epoch) || epoch < 0 || now >= usableUntilMs || epoch > saltEpoch(now, o.epochMs) + 1) {
        known.delete(epoch);
        return { kind: 'expired' };
      }
      const cached = known.get(epoch);
      if (cached) return { kind: 'ok', ...cached };
      try {
        let salt = await read(epoch);
        if (!salt) {
          await o.client.insert({
            table: 'pseudonym_salts',
            values: [{ epoch_ms: o.epochMs, epoch, salt: randomBytes(32).toString('hex'), created_at: toClickHouseTime(now), usable_until: toClickHouseTime(usableUntilMs).slice(0, 19) }],
            format: 'JSONEachRow',
            // One token per epoch: when two writers race, ClickHouse keeps the first candidate only.
            clickhouse_settings: { insert_deduplication_token: `pseudonym-salt:${o.epochMs}:${epoch}` },
          });
          salt = await read(epoch);
        }
        if (!salt) return { kind: 'unavailable', reason: 'the salt written for this epoch could not be read back' };
        known.set(epoch, { salt, usableUntilMs });
        return { kind: 'ok', salt, usableUntilMs };
      } catch (err) {
        return { kind: 'unavailable', reason: `salt store unreachable: ${errorMessage(err)}` };
      }
    },
  };
}

/** Whether the salt store can serve: `pseudonym_salts` exists (migration 004), or why not. */
export type SaltStoreProbe = { kind: 'ready' } | { kind: 'missing_table' } | { kind: 'unreachable'; reason: string };

/** Checks the store once at start-up, so a missing migration fails loudly instead of per request. */
export async function probeSaltStore(client: ClickHouseClient): Promise<SaltStoreProbe> {
  try {
    const rs = await client.query({ query: 'EXISTS TABLE pseudonym_salts', format: 'JSONEachRow' });
    const [row] = await rs.json<{ result: number | string }>();
    return Number(row?.result ?? 0) === 1 ? { kind: 'ready' } : { kind: 'missing_table' };
  } catch (err) {
    return { kind: 'unreachable', reason: errorMessage(err) };
  }
}
