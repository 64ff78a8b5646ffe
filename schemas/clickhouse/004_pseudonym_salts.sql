-- Central pseudonym salts (DESIGN §3.6, docs/EDGE.md "Salt epochs"): 32 random bytes per epoch,
-- shared by every edge that reads this store, deleted by TTL once the epoch leaves retention.
-- The first salt written for an (epoch_ms, epoch) wins: writers insert with a per-epoch
-- deduplication token, so a racing second candidate is dropped, and readers take the earliest row.
CREATE TABLE IF NOT EXISTS pseudonym_salts (
  epoch_ms UInt64,
  epoch UInt64,
  salt String,
  created_at DateTime64(3, 'UTC'),
  usable_until DateTime('UTC')
) ENGINE = MergeTree
ORDER BY (epoch_ms, epoch, created_at)
TTL usable_until DELETE
SETTINGS non_replicated_deduplication_window = 10000, merge_with_ttl_timeout = 3600;
