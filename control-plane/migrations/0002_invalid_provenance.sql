-- Up Migration
-- A proxy books a usage figure no answer can have (negative, fractional, above 1e12) clamped,
-- with provenance 'invalid', so billing can find and review it instead of trusting it.
ALTER TABLE usage_ledger DROP CONSTRAINT IF EXISTS usage_ledger_provenance_check;
ALTER TABLE usage_ledger ADD CONSTRAINT usage_ledger_provenance_check
  CHECK (provenance IN ('reported', 'estimated', 'partial', 'invalid'));

-- Down Migration
ALTER TABLE usage_ledger DROP CONSTRAINT IF EXISTS usage_ledger_provenance_check;
ALTER TABLE usage_ledger ADD CONSTRAINT usage_ledger_provenance_check
  CHECK (provenance IN ('reported', 'estimated', 'partial'));
