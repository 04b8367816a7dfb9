-- Up Migration
-- The console's overview reads every tenant's usage of the last day and month: by time, not
-- by tenant, which the (tenant_id, ...) keys cannot serve. Without these it scanned both
-- tables whole, all history, on every load (1.2 s at a million rows each, growing with the
-- ledger). Built in the migration's transaction: on a large ledger the build holds the
-- ledger's writes for its few seconds, and the proxies' events wait in the stream meanwhile.
CREATE INDEX usage_ledger_ts_idx ON usage_ledger (ts);
CREATE INDEX usage_hourly_hour_idx ON usage_hourly (hour);

-- Down Migration
DROP INDEX usage_hourly_hour_idx;
DROP INDEX usage_ledger_ts_idx;
