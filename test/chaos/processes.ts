/**
 * The child processes of a chaos run: the aggregator host (./aggregator-host.ts) and the Node edge
 * (`tributary edge`, bin/tributary.mjs). Each can be SIGKILLed and started again with the same
 * environment; logs go to files in the run directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../shared/errors.ts';
import { sleep } from '../../shared/time.ts';
import type { HostMessage, HostState, QueryRequest } from './host-protocol.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOST_ENTRY = fileURLToPath(new URL('./aggregator-host.ts', import.meta.url));
const CLI = join(ROOT, 'bin', 'tributary.mjs');

export { sleep };

/**
 * Starts a process as a supervisor would: a start that fails is retried every 2 s (after
 * `cleanUp`), up to `attempts` times. Returns the failed attempts' reasons.
 */
async function superviseStart(startOnce: () => Promise<void>, attempts: number, cleanUp: () => Promise<void> = async () => undefined): Promise<string[]> {
  const failures: string[] = [];
  for (;;) {
    try {
      await startOnce();
      return failures;
    } catch (e) {
      failures.push(errorMessage(e));
      await cleanUp();
      if (failures.length >= attempts) throw e;
      await sleep(2000);
    }
  }
}

/** One HTTP request to 127.0.0.1 with a JSON answer; rejects on a non-2xx status. */
export function httpJson<T>(port: number, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, method, path, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 300) return reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        try {
          resolve(JSON.parse(text) as T);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function logFile(dir: string, name: string): number {
  return openSync(join(dir, `${name}.log`), 'a');
}

/** The aggregator host child: start, SIGKILL, restart on the same ClickHouse directory, control. */
export class AggregatorHost {
  private child: ChildProcess | undefined;
  private port = 0;
  private starts = 0;
  private exits: string[] = [];

  constructor(private readonly env: NodeJS.ProcessEnv, private readonly logDir: string) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts the host as a supervisor would: a start that fails (e.g. `startAggregator` gives up on
   * a broker that is still down) is retried every 2 s, up to `attempts` times. Returns the failed
   * attempts' reasons.
   */
  start(attempts = 30): Promise<string[]> {
    return superviseStart(() => this.startOnce(), attempts);
  }

  private async startOnce(): Promise<void> {
    const fd = logFile(this.logDir, 'aggregator-host');
    this.starts++;
    const child = spawn(process.execPath, ['--import', 'tsx', HOST_ENTRY], { cwd: ROOT, env: this.env, stdio: ['ignore', fd, fd, 'ipc'] });
    closeSync(fd);
    this.child = child;
    this.port = await new Promise<number>((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null): void => reject(new Error(`aggregator host exited before it was ready (code ${code}, signal ${signal}); see ${join(this.logDir, 'aggregator-host.log')}`));
      child.once('exit', onExit);
      child.on('message', (m: HostMessage) => {
        if (m.type !== 'ready') return;
        child.off('exit', onExit);
        resolve(m.port);
      });
    });
    // From here on, an exit the harness did not cause is a failure of the pipeline.
    child.once('exit', (code, signal) => {
      if (this.child === child) this.exits.push(`aggregator host exited by itself (code ${code}, signal ${signal}); see ${join(this.logDir, 'aggregator-host.log')}`);
    });
  }

  /** The aggregator crash: the whole process, every instance in it, without a chance to flush. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.child = undefined;
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.child = undefined;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Exits the harness did not cause (a fatal aggregator error), since the last call. */
  takeUnexpectedExits(): string[] {
    return this.exits.splice(0);
  }

  state(): Promise<HostState> {
    return httpJson<HostState>(this.port, 'GET', '/state');
  }

  addInstance(): Promise<HostState> {
    return httpJson<HostState>(this.port, 'POST', '/instances', undefined, 120_000);
  }

  removeInstance(): Promise<HostState> {
    return httpJson<HostState>(this.port, 'DELETE', '/instances', undefined, 120_000);
  }

  setClickHouseDown(down: boolean): Promise<HostState> {
    return httpJson<HostState>(this.port, 'POST', down ? '/clickhouse/down' : '/clickhouse/up');
  }

  async query<Row>(q: QueryRequest): Promise<Row[]> {
    return (await httpJson<{ rows: Row[] }>(this.port, 'POST', '/query', q)).rows;
  }
}

/**
 * `tributary edge` as its own process group (with EDGE_PROCESSES > 1 the primary and its workers),
 * so the crash takes all of them at once, as a machine or container loss would.
 */
export class EdgeProcess {
  private child: ChildProcess | undefined;
  private exits: string[] = [];

  constructor(private readonly env: NodeJS.ProcessEnv, readonly port: number, private readonly logDir: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the edge as a supervisor would: a failed start (e.g. no broker yet) is retried every 2 s, up to `attempts` times. */
  start(attempts = 30): Promise<string[]> {
    return superviseStart(() => this.startOnce(), attempts, () => this.kill());
  }

  private async startOnce(): Promise<void> {
    const fd = logFile(this.logDir, 'edge');
    const child = spawn(process.execPath, [CLI, 'edge'], { cwd: ROOT, env: { ...this.env, PORT: String(this.port) }, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    this.child = child;
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`tributary edge exited at start-up (code ${child.exitCode}); see ${join(this.logDir, 'edge.log')}`);
      // With EDGE_PROCESSES > 1 the port answers once the first worker listens; /health is served by each.
      const ok = await httpJson<unknown>(this.port, 'GET', '/health', undefined, 2000).then(() => true, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error('tributary edge did not answer /health within 120 s');
      await sleep(200);
    }
    // From here on, an exit the harness did not cause is a failure of the pipeline.
    child.once('exit', (code, signal) => {
      if (this.child === child) this.exits.push(`tributary edge exited by itself (code ${code}, signal ${signal}); see ${join(this.logDir, 'edge.log')}`);
    });
  }

  /** The edge crash: SIGKILL of the process group (primary and workers); nothing is flushed. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const workers = this.workerPids();
    this.child = undefined;
    process.kill(-child.pid, 'SIGKILL');
    await exited;
    // Workers die with the group; wait until none of them is left holding the port.
    for (const pid of workers) while (isAlive(pid)) await sleep(20);
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Exits the harness did not cause, since the last call. */
  takeUnexpectedExits(): string[] {
    return this.exits.splice(0);
  }

  private logOffset = 0;
  private workerKills = 0;

  /**
   * Worker processes that died since the last call and were not killed by the harness, read from
   * the primary's `edge_worker_exited` log events (the primary replaces them, so nothing else shows it).
   */
  takeWorkerCrashes(): string[] {
    const file = join(this.logDir, 'edge.log');
    let text = '';
    try {
      const all = readFileSync(file);
      text = all.subarray(Math.min(this.logOffset, all.length)).toString('utf8');
      this.logOffset = all.length;
    } catch {
      return [];
    }
    const signals: string[] = [];
    for (const line of text.split('\n')) {
      if (!line.includes('"edge_worker_exited"')) continue;
      try {
        const e = JSON.parse(line) as { signal?: string | null; code?: number | null };
        signals.push(e.signal ?? `code ${String(e.code)}`);
      } catch {
        // a partial line: counted on the next call
      }
    }
    // The harness's own worker kills are SIGKILLs; take those out first.
    for (; this.workerKills > 0; this.workerKills--) {
      const i = signals.indexOf('SIGKILL');
      if (i < 0) break;
      signals.splice(i, 1);
    }
    this.workerKills = 0;
    if (signals.length === 0) return [];
    const bySignal = new Map<string, number>();
    for (const sig of signals) bySignal.set(sig, (bySignal.get(sig) ?? 0) + 1);
    return [`edge worker processes exited by themselves ${signals.length} time(s) (${[...bySignal].map(([k, n]) => `${k} ×${n}`).join(', ')}) and were replaced by the primary; see ${file}`];
  }

  /** SIGKILL of one worker process only; the primary replaces it (edge/node/cluster.ts). */
  killOneWorker(pick: number): number | undefined {
    const workers = this.workerPids();
    if (workers.length === 0) return undefined;
    const pid = workers[pick % workers.length] as number;
    this.workerKills++;
    process.kill(pid, 'SIGKILL');
    return pid;
  }

  /** Worker processes alive under the primary (EDGE_PROCESSES > 1). */
  workerCount(): number {
    return this.workerPids().length;
  }

  private workerPids(): number[] {
    const pid = this.child?.pid;
    if (!pid) return [];
    try {
      return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
        .split('\n')
        .map((s) => Number(s.trim()))
        .filter((n) => Number.isInteger(n) && n > 0);
    } catch {
      return [];
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.child = undefined;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }, 30_000);
    await exited;
    clearTimeout(timer);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
