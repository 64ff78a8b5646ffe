import { existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { embeddedOwnerFile } from '../clickhouse/client.ts';
import type { CoreConfig } from '../config/core-config.ts';
import { localKafkaStatus, stopLocalKafka } from '../../tools/kafka-local/local-broker.ts';
import { resolveLocalKafkaConfig } from '../../tools/kafka-local/local-kafka-config.ts';
import { isProcessAlive } from '../os-probes.ts';

const USAGE = `usage: tributary reset --yes [--local-only]

Removes the local state of \`tributary start\`, so the next start begins empty:
  - the local Kafka broker's data (every topic and consumer group; the broker is stopped first),
  - the embedded ClickHouse directory (CLICKHOUSE_PATH),
  - the edge's messageId dedup store (DEDUP_DIR).
The downloaded Kafka jars stay. Every event stored so far is gone: there is no undo.

  --yes         required: confirms the removal
  --local-only  with KAFKA_BROKERS or CLICKHOUSE_URL set: remove the local state only and leave
                those systems untouched (reset their consumer group or tables yourself)`;

/** One piece of local state `tributary reset` removes. */
interface LocalState {
  what: string;
  path: string;
}

/**
 * `tributary reset`: removes local state only, never a shared system. Refuses without `--yes`,
 * while a Tributary process has the embedded ClickHouse open, and when KAFKA_BROKERS or
 * CLICKHOUSE_URL point at other systems (unless `--local-only`). A running local broker is
 * stopped first: its data cannot be removed under it, and nothing else should be using it once
 * the pipeline that used it is down.
 */
export async function runReset(config: CoreConfig, args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== '--yes' && a !== '--local-only');
  if (unknown.length > 0) {
    console.error(`unknown option ${unknown.join(' ')}\n\n${USAGE}`);
    return 2;
  }
  const yes = args.includes('--yes');
  const localOnly = args.includes('--local-only');
  const kafka = resolveLocalKafkaConfig();
  const externalKafka = config.kafkaBrokers !== undefined && !(config.kafkaBrokers.length === 1 && config.kafkaBrokers[0] === kafka.brokers);
  const externalClickHouse = config.clickhouse.kind === 'server';
  if ((externalKafka || externalClickHouse) && !localOnly) {
    const named = [externalKafka ? `KAFKA_BROKERS=${config.kafkaBrokers?.join(',')}` : '', externalClickHouse ? 'CLICKHOUSE_URL' : ''].filter(Boolean).join(' and ');
    console.error(
      `tributary reset: ${named} ${externalKafka && externalClickHouse ? 'point' : 'points'} at systems this command does not reset. ` +
        'Unset them to reset the local pipeline, or pass --local-only to remove only the local state and leave those systems untouched.',
    );
    return 2;
  }

  const targets: LocalState[] = [];
  if (!externalKafka) targets.push({ what: `local Kafka data (topics and consumer groups, broker at ${kafka.brokers})`, path: kafka.dataDir });
  if (config.clickhouse.kind === 'embedded') targets.push({ what: 'embedded ClickHouse (CLICKHOUSE_PATH)', path: resolve(config.clickhouse.path) });
  targets.push({ what: 'messageId dedup store (DEDUP_DIR)', path: resolve(config.dedupDir) });

  if (!yes) {
    console.error(`tributary reset removes, with no undo:\n${targets.map((t) => `  - ${t.what}: ${t.path}`).join('\n')}\nRun it again with --yes to confirm.\n\n${USAGE}`);
    return 2;
  }

  if (config.clickhouse.kind === 'embedded') {
    const owner = ownerOf(resolve(config.clickhouse.path));
    if (owner !== undefined) {
      console.error(`tributary reset: a Tributary process (pid ${owner}) is using ${resolve(config.clickhouse.path)}. Stop it first (Ctrl-C, or kill -TERM ${owner}), then run reset again.`);
      return 1;
    }
  }
  if (!externalKafka) {
    const status = await localKafkaStatus();
    if (status.pid !== undefined) {
      const stopped = await stopLocalKafka();
      console.log(`Stopped the local Kafka broker (pid ${stopped.pid ?? status.pid}${stopped.forced ? ', killed after timeout' : ''}).`);
    }
  }
  let removedAny = false;
  for (const t of targets) {
    if (!existsSync(t.path)) {
      console.log(`Nothing to remove for the ${t.what}: ${t.path} does not exist.`);
      continue;
    }
    rmSync(t.path, { recursive: true, force: true });
    removedAny = true;
    console.log(`Removed the ${t.what}: ${t.path}`);
  }
  if (externalKafka) console.log(`Left KAFKA_BROKERS=${config.kafkaBrokers?.join(',')} untouched (--local-only).`);
  if (externalClickHouse) console.log('Left CLICKHOUSE_URL untouched (--local-only).');
  console.log(removedAny ? 'Local state reset: the next `tributary start` begins empty.' : 'There was no local state to remove.');
  return 0;
}

/** The live process that has the embedded ClickHouse at `path` open, if any (see `embeddedOwnerFile`). */
function ownerOf(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(embeddedOwnerFile(path), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid) ? pid : undefined;
}
