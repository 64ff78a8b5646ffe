import type { Kafka } from 'kafkajs';
import type { CoreConfig } from '../config/core-config.ts';

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  configEntries?: Array<{ name: string; value: string }>;
}

/** Creates missing topics; existing ones are left as they are (their partition count is the operator's call). */
export async function ensureTopics(kafka: Kafka, specs: TopicSpec[]): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({ topic: s.topic, numPartitions: s.numPartitions, replicationFactor: -1, configEntries: s.configEntries ?? [] })),
      });
    }
    return missing.map((s) => s.topic);
  } finally {
    await admin.disconnect();
  }
}

/** The topics the pipeline needs, created on first start. */
export async function ensurePipelineTopics(kafka: Kafka, config: CoreConfig): Promise<void> {
  await ensureTopics(kafka, [
    { topic: config.topics.partials, numPartitions: 4 },
    { topic: config.topics.rejected, numPartitions: 1 },
    { topic: config.topics.deadLetter, numPartitions: 1 },
  ]);
}
