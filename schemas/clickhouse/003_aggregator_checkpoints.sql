-- Aggregator checkpoints (ADR 0003). A row holds one partition's state after an epoch and the
-- emission of that epoch. It becomes authoritative only when the Kafka offset commit of the
-- same epoch names its checkpoint_id in the offset metadata; rows never named are ignored.
CREATE TABLE IF NOT EXISTS aggregator_checkpoints (
  group_id String,
  topic String,
  partition UInt16,
  epoch UInt64,
  checkpoint_id String,
  next_offset String,
  state String CODEC(ZSTD(3)),
  emission String CODEC(ZSTD(3)),
  created_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
ORDER BY (group_id, topic, partition, epoch, checkpoint_id)
TTL toDateTime(created_at) + INTERVAL 7 DAY
SETTINGS non_replicated_deduplication_window = 10000;
