import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isProcessAlive } from '../os-probes.ts';

/** The file naming the process that has the embedded ClickHouse at `path` open (its pid). */
export function embeddedOwnerFile(path: string): string {
  return join(resolve(path), 'tributary-owner.pid');
}

/**
 * Another live process has the embedded ClickHouse directory open. libchdb binds a data
 * directory to one process at a time; opening it anyway fails deep inside chdb ("Cannot lock
 * file .../status"), so commands refuse first with what to run instead.
 */
export class EmbeddedClickHouseInUseError extends Error {
  readonly code = 'embedded_clickhouse_in_use';
  constructor(
    readonly path: string,
    readonly ownerPid: number,
  ) {
    super(
      `The embedded ClickHouse at ${path} is open in another process (pid ${ownerPid}): the embedded engine ` +
        'lets one process at a time use a data directory, so `tributary aggregator`, `query-api`, `migrate`, ' +
        '`gateway` and `edge` cannot share it with `tributary start` or with each other.\n' +
        'Run one of the topologies that work on one machine (README "Processes and topologies"):\n' +
        '  - everything in one process: `tributary start` (its query API is on QUERY_PORT, 8081);\n' +
        '  - separate processes: run a ClickHouse server and set CLICKHOUSE_URL for every command;\n' +
        '  - or give this command its own CLICKHOUSE_PATH (it will not see the other process\'s data).\n' +
        `If no process ${ownerPid} of Tributary is running, delete ${embeddedOwnerFile(path)}.`,
    );
    this.name = 'EmbeddedClickHouseInUseError';
  }
}

/**
 * Throws {@link EmbeddedClickHouseInUseError} when a live process other than this one has the
 * embedded directory at `path` open. Commands call it before any other start-up work (a local
 * broker, topics), so they refuse at once; {@link claimEmbeddedDirectory} is the binding check.
 */
export function assertEmbeddedDirectoryFree(path: string): void {
  const pid = readOwnerPid(embeddedOwnerFile(path));
  if (pid !== undefined && pid !== process.pid && isProcessAlive(pid)) throw new EmbeddedClickHouseInUseError(resolve(path), pid);
}

/**
 * Claims the embedded directory at `path` for this process before chdb opens it: creates the
 * owner file exclusively, takes over one left by a process that is gone, and throws
 * {@link EmbeddedClickHouseInUseError} when a live process holds it. Returns the release step.
 */
export function claimEmbeddedDirectory(path: string): () => void {
  const owner = embeddedOwnerFile(path);
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(owner, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = readOwnerPid(owner);
    if (pid === process.pid) break; // this process opened it already
    if (pid !== undefined && isProcessAlive(pid)) throw new EmbeddedClickHouseInUseError(resolve(path), pid);
    // Left by a process that died (SIGKILL, crash): take it over. Twice is enough to lose a race
    // to another claimant, which then holds it and is reported above.
    if (attempt > 0) throw new Error(`could not claim ${owner}: it keeps reappearing; another process is opening ${resolve(path)}`);
    rmSync(owner, { force: true });
  }
  return () => {
    if (readOwnerPid(owner) === process.pid) rmSync(owner, { force: true });
  };
}

/** The pid in the owner file, if there is one. */
export function readOwnerPid(owner: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(owner, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
