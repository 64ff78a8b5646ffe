/**
 * The edge pipeline's phases (edge/pipeline/index.ts): prepare per event, then the one await
 * (pseudonym resolution), then commit, where dedup and accumulate run in one synchronous turn.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { hash64FromHex } from '../../../shared/algebra/index.ts';
import type { Accumulator, AccumulatorEvent } from '../../../edge/accumulator.ts';
import { createIngest, createIngestState, type IngestState } from '../../../edge/ingest.ts';
import type { Deduplicator } from '../../../edge/pipeline/dedup.ts';
import type { IngestSummary, PipelinePhases, PreparedEvent, RequestResult, Resolved } from '../../../edge/pipeline/index.ts';
import type { PseudonymResult, Pseudonymizer } from '../../../edge/pipeline/pseudonymize.ts';
import { ok, reject, type Drop, type StepResult } from '../../../edge/pipeline/step-result.ts';
import type { RequestEvents } from '../../../edge/request-events.ts';
import { fakeFlusher } from '../../support/fake-flusher.ts';
import { createStaticSaltProvider } from '../../../shared/salts.ts';
import type { SegmentEvent } from '../../../schemas/validators.ts';
import { T0, testConfig } from './helpers.ts';

describe('pipeline phases: types', () => {
  it('prepare and commit return no Promise; resolve is the only phase that may', () => {
    expectTypeOf<ReturnType<PipelinePhases['prepare']>>().toEqualTypeOf<Exclude<StepResult<PreparedEvent>, Drop>>();
    expectTypeOf<ReturnType<PipelinePhases['commit']>>().toEqualTypeOf<RequestResult<IngestSummary>>();
    expectTypeOf<ReturnType<PipelinePhases['resolve']>>().toEqualTypeOf<RequestResult<Resolved> | Promise<RequestResult<Resolved>>>();
    // A commit that awaited (returned a Promise) would no longer satisfy the phase's type.
    expectTypeOf<Promise<RequestResult<IngestSummary>>>().not.toMatchTypeOf<ReturnType<PipelinePhases['commit']>>();
  });
});

const config = testConfig({ DIMENSIONS: 'path' });
const event = (messageId: string, userId: string): SegmentEvent => ({ type: 'track', event: 'signup', userId, messageId, timestamp: '2024-05-01T11:59:00.000Z' }) as SegmentEvent;
const request = (...events: SegmentEvent[]): RequestEvents => ({
  kind: 'ok',
  batchSentAt: undefined,
  batchContext: undefined,
  events: events.map((e, index) => ({ index, raw: e, result: ok(e) })),
});

/** A pipeline whose steps write what they do to `log`; pseudonyms wait until `release()`. */
function instrumented(o: { claim?: Deduplicator['claim']; pseudonym?: () => PseudonymResult } = {}) {
  const log: string[] = [];
  const added: AccumulatorEvent[] = [];
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  const salts = createStaticSaltProvider({ secret: config.pseudonymSalt, epochMs: config.saltEpochMs, retentionEpochs: config.saltRetentionEpochs, now: () => T0 });
  const base = createIngestState(config, salts);
  const enrich = Object.assign((e: SegmentEvent, ctx: Parameters<IngestState['enrich']>[1]) => {
    log.push(`enrich ${e.messageId}`);
    return base.enrich(e, ctx);
  }, { userAgentCacheSize: 0 });
  const pseudonymizer: Pseudonymizer = {
    now: () => undefined,
    async pseudonym(_epoch, _site, id) {
      log.push(`pseudonymize ${id}`);
      await gate;
      log.push(`pseudonym ${id}`);
      return o.pseudonym?.() ?? { kind: 'ok', pseudonym: { hex: '00000000000000ab', hash: hash64FromHex('00000000000000ab') } };
    },
    cacheSize: 0,
  };
  const dedup: Deduplicator = {
    claim(site, ids) {
      log.push(`dedup ${ids.join(',')}`);
      // Runs as soon as the pipeline yields: after commit if commit awaits nothing.
      queueMicrotask(() => log.push('next microtask'));
      return o.claim ? o.claim(site, ids) : { kind: 'ok', duplicate: ids.map(() => false) };
    },
    drained: () => undefined,
    acknowledged: () => undefined,
  };
  const accumulator: Accumulator = {
    add(e) {
      log.push(`accumulate ${e.messageId ?? ''}`);
      added.push(e);
    },
    drain: () => [],
    rowCount: 0,
  };
  const flusher = fakeFlusher({ addRejected: () => log.push('rejected to flusher'), rowsAdded: () => log.push('rows added') });
  const state: IngestState = { ...base, enrich, pseudonymizer, dedup };
  const ingest = createIngest({ config, accumulator, flusher, state });
  return { ingest, log, added, release: () => open() };
}

describe('pipeline phases: order', () => {
  it('prepares every event, awaits the pseudonyms, then dedups and accumulates in one synchronous turn', async () => {
    const p = instrumented();
    const answer = p.ingest(request(event('m1', 'u1'), event('m2', 'u2')), { site: 'site-a', receivedAtMs: T0, country: undefined });
    await new Promise((r) => setTimeout(r, 5));
    // Waiting on the pseudonyms: prepared, nothing marked as seen or counted yet.
    expect(p.log).toEqual(['enrich m1', 'enrich m2', 'pseudonymize u1', 'pseudonymize u2']);
    p.release();
    expect(await answer).toEqual({ accepted: 2, duplicates: 0, rejected: [] });
    expect(p.log.slice(4)).toEqual(['pseudonym u1', 'pseudonym u2', 'dedup m1,m2', 'accumulate m1', 'accumulate m2', 'rows added', 'next microtask']);
    expect(p.added.map((e) => [e.event, e.user])).toEqual([
      ['signup', hash64FromHex('00000000000000ab')],
      ['signup', hash64FromHex('00000000000000ab')],
    ]);
  });

  it('a salt that cannot be had is a retry outcome: nothing deduplicated or counted', async () => {
    const p = instrumented({ pseudonym: () => ({ kind: 'unavailable', reason: 'gateway down' }) });
    p.release();
    const answer = await p.ingest(request(event('m1', 'u1')), { site: 'site-a', receivedAtMs: T0, country: undefined });
    expect(answer).toMatchObject({ kind: 'retry', reason: 'salt_unavailable' });
    expect(p.log.filter((l) => l.startsWith('dedup') || l.startsWith('accumulate') || l === 'rows added')).toEqual([]);
  });

  it.each([
    ['busy', 'in_flight'],
    ['unavailable', 'dedup_unavailable'],
  ] as const)('a dedup store that answers %s is a retry outcome (%s): nothing counted', async (kind, reason) => {
    const p = instrumented({ claim: () => ({ kind }) });
    p.release();
    const answer = await p.ingest(request(event('m1', 'u1')), { site: 'site-a', receivedAtMs: T0, country: undefined });
    expect(answer).toMatchObject({ kind: 'retry', reason });
    expect(p.added).toEqual([]);
    expect(p.log).not.toContain('rows added');
  });

  it('reports an invalid event with its index and sends its redacted record with the commit', async () => {
    const p = instrumented();
    p.release();
    const bad = { type: 'track', userId: 'u9', messageId: 'm9' };
    const req = request(event('m1', 'u1'));
    req.events.push({ index: 1, raw: bad, result: reject('invalid_schema', [{ path: '/event', message: 'is required' }]) });
    const answer = await p.ingest(req, { site: 'site-a', receivedAtMs: T0, country: undefined });
    expect(answer).toEqual({ accepted: 1, duplicates: 0, rejected: [{ index: 1, messageId: 'm9', errors: [{ path: '/event', message: 'is required' }] }] });
    expect(p.log.slice(-5)).toEqual(['dedup m1', 'accumulate m1', 'rejected to flusher', 'rows added', 'next microtask']);
  });
});
