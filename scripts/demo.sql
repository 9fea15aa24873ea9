-- scripts/demo.sql: one checkout through every module, run by scripts/demo
-- on a throwaway cluster with the library preloaded.  Each module adds its
-- step here; statements are echoed, so keep each one short and readable.

\set VERBOSITY default
\echo
\echo '== payments demo: one checkout, every module'
CREATE EXTENSION payments;

\echo
\echo '== errors: every SQLSTATE the extension raises, with retry advice and HTTP status'
SELECT sqlstate, name, retriable, http_status FROM payments.error_codes ORDER BY sqlstate;

\echo
\echo '== observability: counters since server start'
SELECT name, value FROM payments.stats ORDER BY name;
