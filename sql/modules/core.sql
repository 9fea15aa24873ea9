-- payments install script, module core: schema, error catalog, counters.
-- Every other module follows this file in the install script.

\echo Use "CREATE EXTENSION payments" to load this file. \quit

-- The extension object lives in pg_catalog (as pg_cron does) and owns this
-- schema, so DROP EXTENSION removes it and pg_dump recreates it.
CREATE SCHEMA payments;

CREATE FUNCTION payments.error_codes_list(
    OUT sqlstate text, OUT name text, OUT retriable boolean,
    OUT http_status integer, OUT meaning text)
RETURNS SETOF record
LANGUAGE c STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_error_codes';

CREATE VIEW payments.error_codes AS
    SELECT sqlstate, name, retriable, http_status, meaning
    FROM payments.error_codes_list();

COMMENT ON VIEW payments.error_codes IS
    'every SQLSTATE of class PM the extension raises, with retry advice and an HTTP status';

CREATE FUNCTION payments.stats_list(OUT name text, OUT value bigint)
RETURNS SETOF record
LANGUAGE c STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_stats';

CREATE VIEW payments.stats AS
    SELECT name, value FROM payments.stats_list();

COMMENT ON VIEW payments.stats IS
    'counters since server start (needs shared_preload_libraries = ''payments''; empty otherwise)';

CREATE FUNCTION payments.preloaded()
RETURNS boolean
LANGUAGE c STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_preloaded';

COMMENT ON FUNCTION payments.preloaded() IS
    'whether the server loaded payments at start (shared_preload_libraries)';

DO $$
BEGIN
    IF NOT payments.preloaded() THEN
        RAISE WARNING 'payments is not in shared_preload_libraries: the server-log scrubber is off, so card numbers and webhook secrets in statements and errors reach the server log unmasked; the background worker and the counters are off too'
            USING HINT = 'Add payments to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
END
$$;

GRANT USAGE ON SCHEMA payments TO PUBLIC;
GRANT SELECT ON payments.error_codes, payments.stats TO PUBLIC;
