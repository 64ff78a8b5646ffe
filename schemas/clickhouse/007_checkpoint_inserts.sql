-- Checkpoints keep the epoch's ClickHouse inserts byte for byte (ADR 0008): a restore re-sends
-- exactly them under the epoch's deduplication token. `emission` stays for checkpoints written
-- before this migration; new rows leave it empty.
ALTER TABLE aggregator_checkpoints ADD COLUMN IF NOT EXISTS inserts String CODEC(ZSTD(1)) AFTER emission;
