/**
 * Clients that behave like Segment-style SDKs against the edge's `POST /v1/batch`: every event has
 * a unique messageId; a batch that gets no 2xx (429, 5xx, a timeout, a refused connection) is
 * retried with the same payload after a backoff; now and then an acknowledged batch is sent again
 * later on a fresh connection (a retry whose first answer was lost). Each client keeps a ledger of
 * what it sent and what was acknowledged, per event name, which the checker compares with
 * ClickHouse.
 */
import { Agent, request } from 'node:http';
import { rng } from '../support/prng.ts';
import type { EventLedger } from './check.ts';

export interface LoadOptions {
  url: string;
  writeKey: string;
  /** Event names are `<eventPrefix>-c<client>`: one ledger per client and round. */
  eventPrefix: string;
  connections: number;
  /** Batches per second over all connections; 0 = each connection sends as fast as answers come back. */
  batchesPerSecond: number;
  /** Events per batch are drawn from 1..maxBatchEvents, or exactly this many with `fixedBatchSize`. */
  maxBatchEvents: number;
  fixedBatchSize?: boolean;
  /** Distinct users per client (HyperLogLog check). */
  usersPerClient: number;
  /** Probability that an acknowledged batch is sent again later (a duplicate by messageId). */
  resendProbability: number;
  seed: number;
  requestTimeoutMs?: number;
}

export interface LoadSummary {
  ledgers: EventLedger[];
  batchesSent: number;
  requests: number;
  retries: number;
  resends: number;
  resentEvents: number;
  statuses: Record<string, number>;
  /** Event time of the newest event created (ms). */
  lastEventMs: number;
  /** 4xx answers other than 429: a valid batch was refused for good. */
  refusedBatches: Array<{ event: string; status: number; body: string }>;
}

export interface RunningLoad {
  /** Stops creating batches; pending ones keep retrying until `graceMs` has passed, then are given up (never acknowledged). */
  stop(graceMs: number): Promise<LoadSummary>;
}

const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36';

interface Batch {
  body: string;
  size: number;
  users: number[];
}

interface ClientState {
  ledger: EventLedger;
  usersSent: Uint8Array;
  usersAcked: Uint8Array;
  seq: number;
}

type Outcome = { kind: 'answer'; status: number; body: string; retryAfterMs: number | undefined } | { kind: 'failed'; reason: string };

function post(url: URL, agent: Agent, auth: string, body: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(
      { host: url.hostname, port: url.port, path: '/v1/batch', method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: auth, 'user-agent': UA, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const retryAfter = Number(res.headers['retry-after']);
          resolve({ kind: 'answer', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8').slice(0, 300), retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined });
        });
        res.on('error', (e) => resolve({ kind: 'failed', reason: e.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ kind: 'failed', reason: e.code ?? e.message }));
    req.end(body);
  });
}

/** Starts `connections` SDK-like clients; returns a handle to stop them and read their ledgers. */
export function startLoad(o: LoadOptions): RunningLoad {
  const url = new URL(o.url);
  const auth = `Basic ${Buffer.from(`${o.writeKey}:`).toString('base64')}`;
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections });
  const timeoutMs = o.requestTimeoutMs ?? 15_000;
  const random = rng(o.seed);
  const summary: LoadSummary = { ledgers: [], batchesSent: 0, requests: 0, retries: 0, resends: 0, resentEvents: 0, statuses: {}, lastEventMs: 0, refusedBatches: [] };
  let stopping = false;
  let giveUpAt = Number.POSITIVE_INFINITY;
  const resendTimers = new Set<NodeJS.Timeout>();
  const resendsInFlight = new Set<Promise<unknown>>();

  const clients: ClientState[] = Array.from({ length: o.connections }, (_, c) => ({
    ledger: { event: `${o.eventPrefix}-c${c}`, sentEvents: 0, ackedEvents: 0, usersSent: 0, usersAcked: 0, batches: 0, ackedBatches: 0 },
    usersSent: new Uint8Array(o.usersPerClient),
    usersAcked: new Uint8Array(o.usersPerClient),
    seq: 0,
  }));
  summary.ledgers = clients.map((c) => c.ledger);

  function tally(outcome: Outcome): void {
    summary.requests++;
    const key = outcome.kind === 'answer' ? String(outcome.status) : outcome.reason;
    summary.statuses[key] = (summary.statuses[key] ?? 0) + 1;
  }

  function makeBatch(client: ClientState): Batch {
    const size = o.fixedBatchSize ? o.maxBatchEvents : 1 + Math.floor(random() * o.maxBatchEvents);
    const now = Date.now();
    const timestamp = new Date(now).toISOString();
    summary.lastEventMs = Math.max(summary.lastEventMs, now);
    const users: number[] = [];
    const events: string[] = [];
    for (let i = 0; i < size; i++) {
      const user = Math.floor(random() * o.usersPerClient);
      users.push(user);
      const messageId = `${client.ledger.event}-${client.seq++}`;
      events.push(`{"type":"track","event":"${client.ledger.event}","userId":"u${user}-${client.ledger.event}","messageId":"${messageId}","timestamp":"${timestamp}","properties":{"value":1},"context":{"page":{"path":"/chaos"}}}`);
    }
    return { body: `{"batch":[${events.join(',')}],"sentAt":"${timestamp}"}`, size, users };
  }

  function recordSent(client: ClientState, batch: Batch): void {
    client.ledger.batches++;
    client.ledger.sentEvents += batch.size;
    for (const u of batch.users) {
      if (client.usersSent[u] === 0) client.ledger.usersSent++;
      client.usersSent[u] = 1;
    }
  }

  function recordAcked(client: ClientState, batch: Batch): void {
    client.ledger.ackedBatches++;
    client.ledger.ackedEvents += batch.size;
    for (const u of batch.users) {
      if (client.usersAcked[u] === 0) client.ledger.usersAcked++;
      client.usersAcked[u] = 1;
    }
  }

  /** A late duplicate of an acknowledged batch, on its own connection (it may reach another edge process). */
  function scheduleResend(batch: Batch): void {
    const delay = 500 + Math.floor(random() * 15_000);
    const timer = setTimeout(() => {
      resendTimers.delete(timer);
      if (stopping) return;
      summary.resends++;
      summary.resentEvents += batch.size;
      const fresh = new Agent({ keepAlive: false });
      const sent = post(url, fresh, auth, batch.body, timeoutMs).then(tally);
      resendsInFlight.add(sent);
      void sent.finally(() => resendsInFlight.delete(sent));
    }, delay);
    resendTimers.add(timer);
  }

  async function deliver(client: ClientState, batch: Batch): Promise<void> {
    summary.batchesSent++;
    recordSent(client, batch);
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) summary.retries++;
      const outcome = await post(url, agent, auth, batch.body, timeoutMs);
      tally(outcome);
      if (outcome.kind === 'answer' && outcome.status >= 200 && outcome.status < 300) {
        recordAcked(client, batch);
        // Every event of the batch is valid: a 2xx that still rejects some of them is reported.
        if (outcome.body.includes('"rejected":[{')) summary.refusedBatches.push({ event: client.ledger.event, status: outcome.status, body: outcome.body });
        if (random() < o.resendProbability) scheduleResend(batch);
        return;
      }
      if (outcome.kind === 'answer' && outcome.status >= 400 && outcome.status < 500 && outcome.status !== 429 && outcome.status !== 408) {
        // Final for an SDK (analytics.js and analytics-node drop the batch): the checker reports it.
        summary.refusedBatches.push({ event: client.ledger.event, status: outcome.status, body: outcome.body });
        return;
      }
      // Exponential backoff with jitter, at least the server's Retry-After: what analytics-node does.
      const backoff = Math.min(5000, 100 * 2 ** Math.min(attempt, 6)) * (0.5 + random());
      const wait = Math.max(backoff, outcome.kind === 'answer' ? (outcome.retryAfterMs ?? 0) : 0);
      if (Date.now() + wait > giveUpAt) return;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  const intervalMs = o.batchesPerSecond > 0 ? (1000 * o.connections) / o.batchesPerSecond : 0;
  const loops = clients.map(async (client, c) => {
    // Spread the clients' first batches over one interval.
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, (intervalMs * c) / o.connections));
    while (!stopping) {
      const started = Date.now();
      await deliver(client, makeBatch(client));
      const wait = intervalMs - (Date.now() - started);
      if (wait > 0 && !stopping) await new Promise((r) => setTimeout(r, wait));
    }
  });

  return {
    async stop(graceMs: number) {
      stopping = true;
      giveUpAt = Date.now() + graceMs;
      for (const t of resendTimers) clearTimeout(t);
      resendTimers.clear();
      await Promise.all(loops);
      await Promise.all([...resendsInFlight]);
      agent.destroy();
      return summary;
    },
  };
}
