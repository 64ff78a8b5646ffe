import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** edge/deno/main.ts in a real Deno process, listening. */
export interface DenoEdge {
  child: ChildProcess;
  url: string;
  /** The `source_id` of its `edge_started` line. */
  sourceId: string;
  /** Its output so far: stdout lines and stderr chunks. */
  output: string[];
  /** SIGTERM, wait for the exit, remove its DENO_DIR. */
  stop(): Promise<void>;
}

function denoExecutable(): string {
  // The npm package resolves its platform binary (@deno/<platform>) without network access.
  const api = createRequire(import.meta.url)('deno/install_api.cjs') as { runInstall(): string };
  return api.runInstall();
}

/**
 * Starts the Deno edge (the npm-shipped binary, net access to 127.0.0.1 only, its own DENO_DIR)
 * on a free port with `env` as its configuration, and resolves once it logged `edge_started`.
 */
export async function startDenoEdge(env: Record<string, string>): Promise<DenoEdge> {
  const denoDir = mkdtempSync(join(tmpdir(), 'tributary-deno-'));
  const output: string[] = [];
  const child = spawn(denoExecutable(), ['run', '--allow-net=127.0.0.1', '--allow-env', '--allow-read', 'edge/deno/main.ts'], {
    cwd: join(import.meta.dirname, '../../..'),
    env: { PATH: process.env.PATH ?? '', DENO_NO_UPDATE_CHECK: '1', DENO_DIR: denoDir, NO_COLOR: '1', ...env, PORT: '0', HOSTNAME: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(denoDir, { recursive: true, force: true });
  };
  child.stderr?.on('data', (b: Buffer) => output.push(b.toString()));
  for await (const line of createInterface({ input: child.stdout! })) {
    output.push(line);
    const parsed = line.startsWith('{') ? (JSON.parse(line) as { event?: string; url?: string; source_id?: string }) : {};
    if (parsed.event === 'edge_started') return { child, url: parsed.url ?? '', sourceId: parsed.source_id ?? '', output, stop };
  }
  await stop();
  throw new Error(`the Deno edge did not start:\n${output.join('\n')}`);
}

/** Resident and peak resident memory of a process, in MB (Linux /proc). */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}
