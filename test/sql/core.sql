-- core: the extension's schema, error catalog, counters and GUC prefix.

-- The extension owns its schema and cannot be moved.
SELECT e.extname, e.extrelocatable, n.nspname AS owned_schema
FROM pg_extension e
JOIN pg_depend d ON d.refobjid = e.oid AND d.deptype = 'e'
JOIN pg_namespace n ON n.oid = d.objid AND d.classid = 'pg_namespace'::regclass
WHERE e.extname = 'payments';
ALTER EXTENSION payments SET SCHEMA public;

-- The error catalog: every code is of class PM, unique, with an HTTP status.
SELECT sqlstate, name, retriable, http_status FROM payments.error_codes ORDER BY sqlstate;
SELECT count(*) = count(DISTINCT sqlstate) AS unique_codes,
       count(*) = count(DISTINCT name) AS unique_names,
       bool_and(sqlstate ~ '^PM[0-9A-Z]{3}$') AS class_pm,
       bool_and(http_status BETWEEN 400 AND 599) AS http_error_status,
       bool_and(meaning <> '') AS explained
FROM payments.error_codes;

-- The codes of the design's contract are all there.
SELECT c.sqlstate, e.name IS NOT NULL AS present
FROM (VALUES ('PM001'), ('PM002'), ('PM003'), ('PM030')) AS c(sqlstate)
LEFT JOIN payments.error_codes e USING (sqlstate)
ORDER BY 1;

-- The test cluster preloads the library.
SELECT payments.preloaded();

-- Counters: the test cluster preloads the library, so every counter is a
-- row with a non-negative value, and names are unique.
SELECT count(*) > 0 AS has_counters,
       count(*) = count(DISTINCT name) AS unique_names,
       bool_and(value >= 0) AS non_negative
FROM payments.stats;

-- Applications may read the catalogs without any grant of their own.
CREATE ROLE payments_core_app;
SET ROLE payments_core_app;
SELECT count(*) > 0 AS can_read_codes FROM payments.error_codes;
SELECT count(*) >= 0 AS can_read_stats FROM payments.stats;
RESET ROLE;
DROP ROLE payments_core_app;

-- The payments. GUC prefix is reserved: a misspelt setting is an error,
-- not a setting silently accepted and ignored.
SET payments.no_such_setting = 'on';

-- Hygiene of every module, checked over the catalogs so that a new module
-- cannot forget it.  Each query lists offenders and must return no rows.
-- Every SECURITY DEFINER function pins its search_path.
SELECT p.oid::regprocedure AS definer_without_search_path
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'payments'
WHERE p.prosecdef
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=%');

-- No table or sequence of the extension is open to PUBLIC.
SELECT c.oid::regclass AS open_to_public, a.privilege_type
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'payments'
CROSS JOIN LATERAL aclexplode(c.relacl) AS a
WHERE c.relkind IN ('r', 'S') AND a.grantee = 0;

-- Every table and sequence is dumped by pg_dump (pg_extension_config_dump).
SELECT c.oid::regclass AS not_dumped
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'payments'
WHERE c.relkind IN ('r', 'S')
  AND c.oid <> ALL (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'payments');
