import type { Logger } from '../log.ts';

/** Counts refused requests and logs them in bounded volume; see {@link createRefusalLog}. */
export interface RefusalLog {
  /**
   * Counts one refusal. `reason` is internal and may be finer than the answer's code (the answer
   * says `unauthorized`, the log says `unknown_edge` or `bad_signature`); `edgeId` only for an
   * edge that has a key (an unknown id is the caller's text and is never logged).
   */
  refused(reason: string, edgeId: string | undefined): void;
  /** Logs the counts gathered since the last flush as one line (nothing when there were none). */
  flush(): void;
}

/**
 * Refusals are logged as one `gateway_requests_refused` line per interval, with counts by
 * reason and by edge, plus the first refusal of each (reason, edge) in an interval at once (an
 * operator who breaks a key sees why right away). Lines per interval are bounded by the reasons ×
 * configured edges, whatever the request rate: a flood of bad requests cannot fill the disk.
 * The gateway server calls {@link RefusalLog.flush} every `intervalMs`; each `refused` call also
 * flushes when the interval is over.
 */
export function createRefusalLog(o: { logger: Logger; intervalMs: number; now: () => number }): RefusalLog {
  let seen = new Set<string>();
  let byReason = new Map<string, number>();
  let byEdge = new Map<string, number>();
  let total = 0;
  let startedMs = o.now();
  const flush = (): void => {
    const nowMs = o.now();
    if (total > 0) {
      o.logger.warn({ event: 'gateway_requests_refused', total, by_reason: Object.fromEntries(byReason), by_edge: Object.fromEntries(byEdge), interval_ms: nowMs - startedMs });
    }
    seen = new Set();
    byReason = new Map();
    byEdge = new Map();
    total = 0;
    startedMs = nowMs;
  };
  return {
    refused(reason, edgeId) {
      if (o.now() - startedMs >= o.intervalMs) flush();
      const key = `${reason}\u0000${edgeId ?? ''}`;
      const first = !seen.has(key);
      seen.add(key);
      byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
      if (edgeId !== undefined) byEdge.set(edgeId, (byEdge.get(edgeId) ?? 0) + 1);
      total++;
      if (first) o.logger.warn({ event: 'gateway_request_refused', reason, edge_id: edgeId ?? null, note: `further refusals are counted in gateway_requests_refused every ${o.intervalMs / 1000} s` });
    },
    flush,
  };
}
