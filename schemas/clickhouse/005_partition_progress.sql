-- The watermark each aggregator partition has reached, recorded also while it writes no window
-- rows (its edges only send heartbeats). An hour, day or range bucket is final only when every
-- partition that wrote a window in it has passed the bucket's end plus the allowed lateness; the
-- watermarks on window_status rows alone would leave the last busy hour of a partition that went
-- quiet provisional until it saw data again. One row per partition and minute of watermark
-- progress at most; the newest version wins.
CREATE TABLE IF NOT EXISTS partition_progress (
  partition UInt16,
  watermark DateTime64(3, 'UTC'),
  updated_at DateTime64(3, 'UTC'),
  version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY partition
SETTINGS non_replicated_deduplication_window = 10000;
