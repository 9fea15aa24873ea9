-- payments: idempotency keys (insert-or-return).  See src/idempotency.c.
--
-- Applications never touch the table: they call the functions.  Begin,
-- checkpoint, complete and fail run with the caller's rights: their direct
-- paths need none, and every SQL statement they run is run by the C code
-- as the table's owner with search_path pinned to pg_catalog, pg_temp
-- (src/stmt.c), which is what SECURITY DEFINER with SET search_path would
-- do, without its cost on the calls that run no SQL.  Status and purge are
-- SECURITY DEFINER, for the roles they are granted to.

-- One row per (scope, key).  Keys and scopes are opaque identifiers, so they
-- use the "C" collation: byte comparison, and the index order the C code's
-- direct index lookups expect.
CREATE TABLE payments.idempotency_keys (
    scope          text COLLATE pg_catalog."C" NOT NULL,
    key            text COLLATE pg_catalog."C" NOT NULL,
    fingerprint    bytea NOT NULL,
    state          text NOT NULL,
    recovery_point text,
    response       jsonb,
    error          jsonb,
    created_at     timestamptz NOT NULL,
    locked_until   timestamptz,
    expires_at     timestamptz NOT NULL,
    lease          interval NOT NULL,
    ttl            interval NOT NULL,
    owner_token    uuid,
    PRIMARY KEY (scope, key),
    CONSTRAINT idempotency_keys_key_check
        CHECK (pg_catalog.char_length(key) OPERATOR(pg_catalog.<=) 255
               AND key OPERATOR(pg_catalog.<>) ''),
    CONSTRAINT idempotency_keys_scope_check
        CHECK (pg_catalog.char_length(scope) OPERATOR(pg_catalog.<=) 255
               AND scope OPERATOR(pg_catalog.<>) ''),
    CONSTRAINT idempotency_keys_fingerprint_check
        CHECK (pg_catalog.octet_length(fingerprint) OPERATOR(pg_catalog.=) 32),
    CONSTRAINT idempotency_keys_state_check
        CHECK (state OPERATOR(pg_catalog.=) ANY
               (ARRAY['in_flight', 'completed', 'failed']::pg_catalog.text[]))
);

CREATE INDEX idempotency_keys_expires_at_idx
    ON payments.idempotency_keys (expires_at);

COMMENT ON TABLE payments.idempotency_keys IS
    'idempotency keys: one row per (scope, key); use the payments.idempotency_* functions';

SELECT pg_catalog.pg_extension_config_dump('payments.idempotency_keys', '');

REVOKE ALL ON payments.idempotency_keys FROM PUBLIC;

CREATE FUNCTION payments.idempotency_begin(
    key text, request jsonb, scope text DEFAULT 'default',
    ttl interval DEFAULT '24 hours', lease interval DEFAULT '1 minute')
RETURNS TABLE(outcome text, recovery_point text, response jsonb,
              error jsonb, created_at timestamptz, token uuid)
LANGUAGE c VOLATILE ROWS 1
AS 'MODULE_PATHNAME', 'payments_idempotency_begin';

COMMENT ON FUNCTION payments.idempotency_begin(text, jsonb, text, interval, interval) IS
    'start, replay or resume the request under an idempotency key; started and resumed return the owner token';

CREATE FUNCTION payments.idempotency_checkpoint(
    key text, recovery_point text, scope text DEFAULT 'default',
    token uuid DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_idempotency_checkpoint';

COMMENT ON FUNCTION payments.idempotency_checkpoint(text, text, text, uuid) IS
    'record the progress of an in-flight key and renew its lease';

CREATE FUNCTION payments.idempotency_complete(
    key text, response jsonb, scope text DEFAULT 'default',
    token uuid DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_idempotency_complete';

COMMENT ON FUNCTION payments.idempotency_complete(text, jsonb, text, uuid) IS
    'store the response of an in-flight key; later begins replay it for at least ttl';

CREATE FUNCTION payments.idempotency_fail(
    key text, error jsonb, retriable boolean, scope text DEFAULT 'default',
    token uuid DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_idempotency_fail';

COMMENT ON FUNCTION payments.idempotency_fail(text, jsonb, boolean, text, uuid) IS
    'end an in-flight key: a retriable failure frees it, a terminal one is stored and replayed';

CREATE FUNCTION payments.idempotency_status(key text, scope text DEFAULT 'default')
RETURNS TABLE(state text, expired boolean, created_at timestamptz,
              expires_at timestamptz, locked_until timestamptz,
              recovery_point text)
LANGUAGE c STABLE SECURITY DEFINER ROWS 1
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_idempotency_status';

COMMENT ON FUNCTION payments.idempotency_status(text, text) IS
    'what a key is, for support: state and times, never the response or error';

CREATE FUNCTION payments.idempotency_purge(
    before timestamptz DEFAULT pg_catalog.now(), max_rows bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_idempotency_purge';

COMMENT ON FUNCTION payments.idempotency_purge(timestamptz, bigint) IS
    'delete keys that expired before the given time, at most max_rows; returns the number deleted';

REVOKE ALL ON FUNCTION
    payments.idempotency_begin(text, jsonb, text, interval, interval),
    payments.idempotency_checkpoint(text, text, text, uuid),
    payments.idempotency_complete(text, jsonb, text, uuid),
    payments.idempotency_fail(text, jsonb, boolean, text, uuid),
    payments.idempotency_status(text, text),
    payments.idempotency_purge(timestamptz, bigint)
    FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    payments.idempotency_begin(text, jsonb, text, interval, interval),
    payments.idempotency_checkpoint(text, text, text, uuid),
    payments.idempotency_complete(text, jsonb, text, uuid),
    payments.idempotency_fail(text, jsonb, boolean, text, uuid)
    TO PUBLIC;

-- Looking at keys is for support staff, purging for maintenance (the
-- background worker runs it as the owner): grant them to such roles.
