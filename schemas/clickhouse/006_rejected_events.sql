-- Events the edges refused (schema errors, bad fields), from the `rejected` Kafka topic: one row
-- per refused event with the reasons a sender can act on. The event is the edge's redacted copy
-- (values replaced by type and length, ids by pseudonyms; docs/EDGE.md "Privacy").
-- ReplacingMergeTree on the Kafka coordinates: a batch written again after a crash between the
-- insert and the offset commit collapses to one row per record (read with FINAL for exact counts).
CREATE TABLE IF NOT EXISTS rejected_events (
  site LowCardinality(String),
  received_at DateTime64(3, 'UTC'),
  batch_index UInt32,
  message_id Nullable(String),
  errors Array(Tuple(path String, message String)),
  event String,
  kafka_partition UInt16,
  kafka_offset UInt64,
  recorded_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (site, received_at, kafka_partition, kafka_offset)
SETTINGS non_replicated_deduplication_window = 10000;
