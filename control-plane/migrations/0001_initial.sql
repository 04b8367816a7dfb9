-- Up Migration
-- Lanekeeper control plane, first schema. Plans and tenants hold exactly the proxy's YAML
-- shapes (jsonb parsed by proxy/src/config/schema.ts); everything a proxy needs is derived
-- from these tables by GET /v1/config.

CREATE TABLE plans (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
  -- The plan as the proxy's planSchema parses it (defaults applied).
  body        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  -- RESTRICT: a plan cannot be deleted while a tenant uses it (the API answers 409).
  plan        text NOT NULL REFERENCES plans (id) ON DELETE RESTRICT,
  status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  overrides   jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_plan_idx ON tenants (plan);

CREATE TABLE api_keys (
  id            text PRIMARY KEY,
  tenant_id     text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  -- sha256 hex of the whole key; the key itself is shown once and never stored.
  sha256        text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  -- The first characters of the key, so a person can tell keys apart.
  prefix        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

-- A price table is versioned as a whole: each version lists every priced model, and the
-- version in force at time t is the one with the latest effective_from <= t.
CREATE TABLE price_versions (
  id              bigserial PRIMARY KEY,
  effective_from  timestamptz NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX price_versions_effective_idx ON price_versions (effective_from DESC, id DESC);

CREATE TABLE price_entries (
  version_id    bigint NOT NULL REFERENCES price_versions (id) ON DELETE CASCADE,
  model         text NOT NULL,
  -- USD per 1M tokens, as in the proxy's pricing table.
  input         numeric NOT NULL CHECK (input >= 0),
  output        numeric NOT NULL CHECK (output >= 0),
  cached_input  numeric CHECK (cached_input >= 0),
  cache_write   numeric CHECK (cache_write >= 0),
  PRIMARY KEY (version_id, model)
);

CREATE TABLE audit_log (
  id        bigserial PRIMARY KEY,
  actor     text NOT NULL,
  action    text NOT NULL,
  resource  text NOT NULL,
  before    jsonb,
  after     jsonb,
  at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_resource_idx ON audit_log (resource);

-- One row per metered request; request_id makes redelivery harmless.
CREATE TABLE usage_ledger (
  request_id            text PRIMARY KEY,
  tenant_id             text NOT NULL,
  ts                    timestamptz NOT NULL,
  plan                  text NOT NULL,
  dialect               text NOT NULL,
  endpoint              text NOT NULL,
  model                 text NOT NULL,
  model_requested       text,
  upstream_model        text,
  input_tokens          bigint NOT NULL,
  output_tokens         bigint NOT NULL,
  cached_input_tokens   bigint NOT NULL,
  cache_write_tokens    bigint NOT NULL,
  reasoning_tokens      bigint NOT NULL,
  -- Cost at price_version (null: the model had no price in that version, never booked as 0).
  price_version         bigint REFERENCES price_versions (id),
  cost_usd              numeric,
  -- What the proxy computed with its own table, kept to explain any difference.
  reported_cost_usd     numeric,
  status                integer NOT NULL,
  stream                boolean NOT NULL,
  provenance            text NOT NULL CHECK (provenance IN ('reported', 'estimated', 'partial')),
  latency_ms            integer NOT NULL,
  ttfb_ms               integer,
  stream_id             text NOT NULL,
  ingested_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_ledger_tenant_ts_idx ON usage_ledger (tenant_id, ts);

-- Hourly rollups, maintained in the same transaction as the ledger rows they sum.
CREATE TABLE usage_hourly (
  tenant_id             text NOT NULL,
  hour                  timestamptz NOT NULL,
  requests              bigint NOT NULL,
  input_tokens          bigint NOT NULL,
  output_tokens         bigint NOT NULL,
  cached_input_tokens   bigint NOT NULL,
  cache_write_tokens    bigint NOT NULL,
  reasoning_tokens      bigint NOT NULL,
  cost_usd              numeric NOT NULL,
  unpriced_requests     bigint NOT NULL,
  PRIMARY KEY (tenant_id, hour)
);

-- Events that could not be booked (malformed), kept instead of dropped.
CREATE TABLE usage_rejects (
  stream_id    text PRIMARY KEY,
  payload      text,
  reason       text NOT NULL,
  rejected_at  timestamptz NOT NULL DEFAULT now()
);

-- The config's monotonic version: bumped in the same transaction as every change a proxy
-- sees. pricing_version remembers which price version the counter last covered, so a
-- version that becomes effective by the clock also bumps it.
CREATE TABLE config_version (
  id               integer PRIMARY KEY CHECK (id = 1),
  version          bigint NOT NULL,
  pricing_version  bigint,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO config_version (id, version) VALUES (1, 1);

-- An erasure in progress: each finished step is recorded, so a retry resumes where a
-- failure stopped it. The row is deleted when the erasure completes (its report lives on
-- in the audit log only).
CREATE TABLE erasure_jobs (
  tenant_id   text PRIMARY KEY,
  started_at  timestamptz NOT NULL DEFAULT now(),
  steps_done  text[] NOT NULL DEFAULT '{}',
  report      jsonb NOT NULL DEFAULT '{}'::jsonb,
  pseudonym   text
);

-- Down Migration
DROP TABLE erasure_jobs;
DROP TABLE config_version;
DROP TABLE usage_rejects;
DROP TABLE usage_hourly;
DROP TABLE usage_ledger;
DROP TABLE audit_log;
DROP TABLE price_entries;
DROP TABLE price_versions;
DROP TABLE api_keys;
DROP TABLE tenants;
DROP TABLE plans;
