import { Kafka, logLevel } from 'kafkajs';
import { keysCoveringPartitions } from './coordinator-partitions.ts';
import { OFFSETS_TOPIC_PARTITIONS, TRANSACTION_STATE_PARTITIONS } from './kafka-properties.ts';
import { sleep } from '../../shared/time.ts';

function probeClient(brokers: string): Kafka {
  return new Kafka({
    clientId: 'tributary-local-broker-probe',
    brokers: [brokers],
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 0 }, // callers loop with their own deadline
    logLevel: logLevel.NOTHING,
  });
}

/** The port opens before the broker serves requests: ready means a metadata answer. */
export async function answersMetadata(brokers: string): Promise<boolean> {
  const admin = probeClient(brokers).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false; // not ready yet; the caller retries until its deadline
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Creates `__consumer_offsets` and `__transaction_state` and waits until every partition's
 * coordinator has loaded, so a fresh broker behaves like a warm one.
 *
 * Why: on a fresh broker the first transactional `sendOffsets` races the group coordinator's
 * load, and kafkajs 2.2.4 does not retry TxnOffsetCommit on it — its retry lists name the
 * errors `COORDINATOR_LOAD_IN_PROGRESS` / `NOT_COORDINATOR`, while its protocol layer calls
 * them `GROUP_LOAD_IN_PROGRESS` / `NOT_COORDINATOR_FOR_GROUP` — so the transaction fails at
 * once. Returns false if `deadline` passes first.
 */
export async function warmUpCoordinators(brokers: string, deadline: number): Promise<boolean> {
  const kafka = probeClient(brokers);
  const admin = kafka.admin();
  try {
    for (const groupId of keysCoveringPartitions(OFFSETS_TOPIC_PARTITIONS, 'tributary-warmup-group')) {
      // OffsetFetch answers COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR until loaded.
      const loaded = await retryUntil(deadline, () => admin.fetchOffsets({ groupId, topics: [] }));
      if (!loaded) return false;
    }
    for (const transactionalId of keysCoveringPartitions(TRANSACTION_STATE_PARTITIONS, 'tributary-warmup-txn')) {
      // kafkajs sends InitProducerId (to this id's transaction coordinator) on the first transaction().
      const loaded = await retryUntil(deadline, async () => {
        const producer = kafka.producer({
          transactionalId,
          idempotent: true,
          maxInFlightRequests: 1,
          retry: { retries: 1, maxRetryTime: 500 }, // kafkajs refuses an idempotent producer without retries
        });
        try {
          await producer.connect();
          await (await producer.transaction()).abort();
        } finally {
          await producer.disconnect().catch(() => undefined);
        }
      });
      if (!loaded) return false;
    }
    return true;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function retryUntil(deadline: number, attempt: () => Promise<unknown>): Promise<boolean> {
  for (;;) {
    try {
      await attempt();
      return true;
    } catch {
      if (Date.now() > deadline) return false;
      await sleep(100);
    }
  }
}
