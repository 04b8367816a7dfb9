-- Up Migration
-- Wrong admin tokens per client address, shared by every control-plane replica and kept
-- across restarts (control-plane/src/http/failure-throttle.ts). A row holds an address's
-- failures still inside the window; it is deleted once they have all left it.
CREATE TABLE auth_failures (
  address text PRIMARY KEY,
  times timestamptz[] NOT NULL,
  last_failure timestamptz NOT NULL
);
CREATE INDEX auth_failures_last_failure ON auth_failures (last_failure);

-- Settles one attempt from an address, under its row's lock, so concurrent attempts (from
-- one replica or several) are decided one at a time: NULL when the attempt may go on (a
-- wrong one is counted), else the milliseconds until the address's oldest failure leaves the
-- window (the attempt is then not counted). An address at its limit runs the same statements
-- whether its token was right or wrong, so neither the answer nor its timing tells them apart.
CREATE FUNCTION auth_attempt(
  p_address text, p_wrong boolean, p_now timestamptz, p_window interval, p_max integer
) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
  current_times timestamptz[];
  recent timestamptz[];
BEGIN
  INSERT INTO auth_failures (address, times, last_failure)
    VALUES (p_address, '{}', p_now)
    ON CONFLICT (address) DO NOTHING;
  SELECT times INTO current_times FROM auth_failures WHERE address = p_address FOR UPDATE;
  recent := ARRAY(SELECT t FROM unnest(current_times) AS t WHERE t > p_now - p_window ORDER BY t);
  IF cardinality(recent) >= p_max THEN
    UPDATE auth_failures SET times = recent WHERE address = p_address;
    RETURN greatest(extract(epoch FROM (recent[1] + p_window - p_now)) * 1000, 0);
  END IF;
  IF p_wrong THEN
    recent := recent || p_now;
  END IF;
  IF cardinality(recent) = 0 THEN
    DELETE FROM auth_failures WHERE address = p_address;
  ELSE
    UPDATE auth_failures SET times = recent, last_failure = recent[cardinality(recent)]
      WHERE address = p_address;
  END IF;
  -- Other addresses whose failures have all aged out, a few at a time; rows another attempt
  -- holds are skipped, so two attempts never wait on each other here.
  DELETE FROM auth_failures WHERE address IN (
    SELECT address FROM auth_failures
      WHERE last_failure <= p_now - p_window AND address <> p_address
      LIMIT 100 FOR UPDATE SKIP LOCKED
  );
  RETURN NULL;
END;
$$;

-- Down Migration
DROP FUNCTION auth_attempt(text, boolean, timestamptz, interval, integer);
DROP TABLE auth_failures;
