import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { LocalKafkaError } from './local-kafka-error.ts';
import { sleep } from '../../shared/time.ts';
import { isProcessAlive } from '../../core/os-probes.ts';

/**
 * Runs `body` holding an exclusive lock file, across processes. Starts of one data dir go
 * through it (a CLI and a test run starting at once would otherwise launch two JVMs, one of
 * which dies on Kafka's log-dir lock after the pid file was overwritten). A lock whose owner
 * process is gone is taken over.
 *
 * @example
 * await withFileLock(join(dataDir, 'start.lock'), 70_000, 'starting the local Kafka broker', () => start());
 */
export async function withFileLock<T>(lockFile: string, timeoutMs: number, purpose: string, body: () => Promise<T>): Promise<T> {
  const token = `${process.pid}:${Math.random().toString(36).slice(2)}`;
  const deadline = Date.now() + timeoutMs;
  // On a fresh machine the lock's folder (~/.cache/tributary) may not exist yet (issue #11).
  mkdirSync(dirname(lockFile), { recursive: true });
  for (;;) {
    if (tryCreate(lockFile, token)) break;
    // An empty lock is one being written right now: wait for its owner's pid to appear.
    const content = readOrEmpty(lockFile);
    const owner = Number.parseInt(content.split(':')[0] ?? '', 10);
    if (content !== '' && (!Number.isInteger(owner) || !isProcessAlive(owner))) {
      rmSync(lockFile, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new LocalKafkaError(
        'lock_timeout',
        `Another process (pid ${owner}) has been ${purpose} for over ${timeoutMs} ms, holding ${lockFile}. ` +
          `If no such start is running, delete that file and retry.`,
      );
    }
    await sleep(200);
  }
  try {
    return await body();
  } finally {
    if (readOrEmpty(lockFile) === token) rmSync(lockFile, { force: true });
  }
}

function tryCreate(lockFile: string, token: string): boolean {
  let fd: number;
  try {
    fd = openSync(lockFile, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, token);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
