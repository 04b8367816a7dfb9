-- Up Migration
-- The tenant a rejected event names, read from its payload as JSON when it is kept
-- (ledger/book-events.ts), so that an erasure finds every reject of the tenant whatever the
-- payload's spacing or escapes. Matching the payload's text alone, as before, missed
-- `"tenant": "x"` and `"tenant":"\u0078"`: a reject is an event that broke the contract, so
-- its writer need not have been the reference proxy.
ALTER TABLE usage_rejects ADD COLUMN tenant_id text;
CREATE INDEX usage_rejects_tenant_id ON usage_rejects (tenant_id) WHERE tenant_id IS NOT NULL;

-- Rejects kept before: the same reading, in SQL. A payload that is not JSON keeps NULL (the
-- erasure's text match still covers it).
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT stream_id, payload FROM usage_rejects WHERE payload IS NOT NULL LOOP
    BEGIN
      UPDATE usage_rejects SET tenant_id = r.payload::jsonb ->> 'tenant' WHERE stream_id = r.stream_id;
    EXCEPTION WHEN others THEN
      NULL;
    END;
  END LOOP;
END $$;

-- Down Migration
DROP INDEX usage_rejects_tenant_id;
ALTER TABLE usage_rejects DROP COLUMN tenant_id;
