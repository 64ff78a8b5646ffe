import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tributary.mjs', import.meta.url));

/** A `tributary <command>` child process, with its output collected as it arrives. */
export interface TributaryProcess {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output; rejects if the process exits first or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Runs the CLI as a user does (`node bin/tributary.mjs ...`) with `env` on top of this process's
 * environment (KAFKA_BROKERS and friends of the test run are removed unless `env` sets them).
 */
export function spawnTributary(args: string[], env: Record<string, string>): TributaryProcess {
  const base = { ...process.env };
  for (const name of ['KAFKA_BROKERS', 'CLICKHOUSE_URL', 'CLICKHOUSE_PATH', 'DEDUP_DIR', 'PORT', 'QUERY_PORT']) delete base[name];
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    out += chunk.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
    for (const w of [...waiters]) w();
  });
  return {
    child,
    output: () => out,
    exited,
    kill: (signal) => void child.kill(signal),
    waitForOutput(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = out.match(pattern);
          if (m) {
            done();
            resolve(m);
          } else if (hasExited) {
            done();
            reject(new Error(`tributary ${args.join(' ')} exited before printing ${pattern}; output:\n${out.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`tributary ${args.join(' ')} did not print ${pattern} within ${timeoutMs} ms; output:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** `GET /health` as JSON (status and body), or undefined while nothing answers. */
export async function getHealth(url: string): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

/** The status of a component in a `/health` body (`aggregator`, `rejected_sink`). */
export function componentStatus(body: Record<string, unknown> | undefined, component: string): string | undefined {
  const c = body?.[component];
  return typeof c === 'object' && c !== null && 'status' in c ? String((c as { status: unknown }).status) : undefined;
}
