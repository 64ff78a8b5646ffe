import { addToPartial, emptyPartial, encodeEnvelope, hash64, windowStart, type PartialRow } from '../../../shared/algebra/index.ts';
import { rng } from '../../support/prng.ts';

/** One raw event as the oracle sees it: what ClickHouse recounts from scratch. */
export interface RawEvent {
  site: string;
  event: string;
  window_start_ms: number;
  dims_key: string;
  user: string;
  value: number;
}

export interface GoldenStream {
  /** In production order; duplicates are re-sends of an earlier envelope (same source, same sequence). */
  messages: Array<{ key: string; value: Buffer }>;
  raw: RawEvent[];
  duplicates: number;
  windowSizeMs: number;
}

/** The suite's seeded PRNG: the same seed always gives the same stream. */
export { rng as prng };

const SITES = ['shop', 'blog', 'docs'];
const EVENTS = ['$page', 'signup', 'purchase'];
const COUNTRIES = ['DE', 'FR', 'US', 'BR', 'JP'];

/**
 * Out-of-order events from six skewed sources (watermark lags 2 s .. 90 s), re-sent envelopes,
 * corrections (events a few minutes behind their source) and events far beyond the correction
 * horizon (15+ minutes behind), ending with a heartbeat from every source that closes all windows.
 */
export function generateGoldenStream(seed: number, o: { minutes: number; windowSizeMs: number; t0Ms: number }): GoldenStream {
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const lags = [2_000, 5_000, 10_000, 30_000, 60_000, 90_000];
  const stepMs = 10_000;
  const end = o.t0Ms + o.minutes * 60_000;
  const raw: RawEvent[] = [];
  const messages: GoldenStream['messages'] = [];
  const pendingResends: Array<{ at: number; message: { key: string; value: Buffer } }> = [];
  const sequence = new Map<string, number>();
  let duplicates = 0;
  let tick = 0;

  for (let t = o.t0Ms + stepMs; t <= end; t += stepMs, tick++) {
    lags.forEach((lag, s) => {
      const sourceId = `golden-src-${s}`;
      const cells = new Map<string, PartialRow>();
      const n = 3 + Math.floor(rand() * 12);
      for (let i = 0; i < n; i++) {
        const r = rand();
        // 2 % far beyond the horizon, 3 % a few minutes behind (corrections), the rest near the source's time.
        const behind = r < 0.02 ? 15 * 60_000 + rand() * 5 * 60_000 : r < 0.05 ? 2 * 60_000 + rand() * 60_000 : lag + rand() * 20_000;
        const eventTime = Math.max(o.t0Ms - 30 * 60_000, Math.floor(t - behind));
        const site = pick(SITES);
        const event = pick(EVENTS);
        const country = pick(COUNTRIES);
        const user = `u${Math.floor(rand() * 400)}`;
        const value = 1 + Math.floor(rand() * 100);
        const ws = windowStart(eventTime, o.windowSizeMs);
        raw.push({ site, event, window_start_ms: ws, dims_key: `country=${country}`, user, value });
        const key = `${ws}|${site}|${event}|${country}`;
        let row = cells.get(key);
        if (!row) {
          row = { windowStartMs: ws, windowSizeMs: o.windowSizeMs, site, event, dimensions: [['country', country]], partial: emptyPartial() };
          cells.set(key, row);
        }
        addToPartial(row.partial, { user: hash64(user), value });
      }
      const seq = (sequence.get(sourceId) ?? 0) + 1;
      sequence.set(sourceId, seq);
      const message = {
        key: sourceId,
        value: Buffer.from(encodeEnvelope({ version: 1, sourceId, sequence: seq, watermarkMs: t - lag, createdAtMs: t, rows: [...cells.values()] })),
      };
      messages.push(message);
      // An edge retry whose first attempt did land: the aggregator must count it once.
      if (rand() < 0.05) {
        pendingResends.push({ at: tick + 1 + Math.floor(rand() * 3), message });
        duplicates++;
      }
    });
    for (const due of pendingResends.filter((p) => p.at === tick)) messages.push(due.message);
  }
  for (const left of pendingResends.filter((p) => p.at > tick - 1)) messages.push(left.message);
  lags.forEach((_, s) => {
    const sourceId = `golden-src-${s}`;
    const seq = (sequence.get(sourceId) ?? 0) + 1;
    messages.push({ key: sourceId, value: Buffer.from(encodeEnvelope({ version: 1, sourceId, sequence: seq, watermarkMs: end + 86_400_000, createdAtMs: end, rows: [] })) });
  });
  return { messages, raw, duplicates, windowSizeMs: o.windowSizeMs };
}
