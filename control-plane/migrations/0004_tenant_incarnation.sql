-- Up Migration
-- Which incarnation of a tenant id a row is. An id can be erased and then created again as a
-- new tenant; the new row gets a new incarnation, the proxies put it in each usage event, and
-- the ledger books an event that names one only to the row holding it, so a late event of the
-- erased tenant is never booked to the new one (ledger/book-events.ts). A volatile default is
-- evaluated per row, so every existing tenant gets its own.
ALTER TABLE tenants ADD COLUMN incarnation uuid NOT NULL DEFAULT gen_random_uuid();

-- Down Migration
ALTER TABLE tenants DROP COLUMN incarnation;
