import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

export interface CommandResult {
  /** `undefined` when the executable could not be started at all (ENOENT, EACCES). */
  exitCode: number | null | undefined;
  spawnError: NodeJS.ErrnoException | undefined;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, capturing output; never throws. */
export function runCommand(command: string, args: string[], options: { cwd?: string } = {}): Promise<CommandResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) =>
      resolvePromise({ exitCode: undefined, spawnError: error, stdout, stderr }),
    );
    child.on('close', (code) => resolvePromise({ exitCode: code, spawnError: undefined, stdout, stderr }));
  });
}

/**
 * True while `pid` is a live process. A zombie (exited, not yet reaped by its parent — e.g. a
 * broker this very process spawned) counts as dead, or stop would wait out its full timeout.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = readTextIfExists(`/proc/${pid}/stat`);
  if (stat === undefined) return true;
  // Field 3, after the parenthesised command name (which may itself contain spaces).
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/**
 * Guards against pid reuse: the pid file may outlive the broker and its pid be recycled.
 * Where /proc is missing (macOS) we cannot tell, and trust the pid file.
 */
export function isBrokerProcess(pid: number, serverPropertiesPath: string): boolean {
  if (!isProcessAlive(pid)) return false;
  const cmdline = readTextIfExists(`/proc/${pid}/cmdline`);
  if (cmdline === undefined) return true;
  const args = cmdline.split('\0');
  return args.includes('kafka.Kafka') && args.includes(serverPropertiesPath);
}

/** Resident set size in bytes (Linux only). */
export function residentBytes(pid: number): number | undefined {
  const status = readTextIfExists(`/proc/${pid}/status`);
  const match = status === undefined ? null : /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
}

export function isPortAccepting(port: number, host = '127.0.0.1', timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect({ port, host });
    const done = (accepting: boolean): void => {
      socket.destroy();
      resolvePromise(accepting);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True if nothing is bound to host:port (a listener that is not accepting still counts as bound). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolvePromise(true)));
  });
}

export function tailFile(path: string, lines: number): string {
  const text = readTextIfExists(path) ?? '';
  return text.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1).slice(-lines).join('\n');
}

function readTextIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
