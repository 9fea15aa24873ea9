-- idempotency_shape: what a DBA adds to payments.idempotency_keys is
-- honoured.  idempotency_begin reads and inserts without the executor only
-- while the table is exactly as the install script made it; with an extra
-- unique index, trigger, CHECK constraint or altered column it goes
-- through SQL statements, so the addition fires or is checked, and the
-- primary key stays the only arbiter of "this key exists".  Each addition
-- is removed again before the next, so later tests see the table as made.

CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- An extra unique index: a key used in two scopes violates it (23505),
-- at once, not PM002 after a round of retries.
CREATE UNIQUE INDEX keys_one_scope ON payments.idempotency_keys (key);
SELECT outcome FROM payments.idempotency_begin('shape-1', '{}', 'scope-a');
SELECT pg_temp.try($$SELECT outcome FROM payments.idempotency_begin('shape-1', '{}', 'scope-b')$$);
-- the same key in its own scope still replays and refuses as before
SELECT pg_temp.try($$SELECT outcome FROM payments.idempotency_begin('shape-1', '{}', 'scope-a')$$);
SELECT payments.idempotency_complete('shape-1', '{"ok": true}', 'scope-a');
SELECT outcome, response FROM payments.idempotency_begin('shape-1', '{}', 'scope-a');
DROP INDEX payments.keys_one_scope;
SELECT outcome FROM payments.idempotency_begin('shape-1', '{}', 'scope-b');

-- A trigger a DBA added fires for begin's insert.  It runs as the
-- table's owner with the pinned search_path, whoever calls and whatever
-- search_path the caller set.
CREATE TABLE key_audit (scope text, key text, who name, path text);
CREATE FUNCTION audit_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- it runs under the search_path of the payments functions: qualify names
    INSERT INTO public.key_audit VALUES (NEW.scope, NEW.key, current_user,
        pg_catalog.current_setting('search_path'));
    RETURN NEW;
END $$;
CREATE TRIGGER audit_keys AFTER INSERT OR UPDATE ON payments.idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION audit_key();
SELECT outcome FROM payments.idempotency_begin('shape-2', '{}');
CREATE ROLE shape_app;
CREATE SCHEMA shape_evil AUTHORIZATION shape_app;
SET ROLE shape_app;
SET search_path = shape_evil, pg_catalog;
CREATE TABLE shape_evil.key_audit (scope text, key text, who name, path text);
SELECT outcome FROM payments.idempotency_begin('shape-3', '{}');
SELECT payments.idempotency_complete('shape-3', '{"ok": true}');
SELECT outcome, response FROM payments.idempotency_begin('shape-3', '{}');
SELECT count(*) AS evil_rows FROM shape_evil.key_audit;
SELECT pg_temp.try($$SELECT count(*) FROM payments.idempotency_keys$$);
RESET search_path;
RESET ROLE;
SELECT key, who = (SELECT rolname FROM pg_roles r, pg_class c
                   WHERE c.oid = 'payments.idempotency_keys'::regclass
                     AND r.oid = c.relowner) AS as_owner, path
FROM key_audit ORDER BY key, path;
DROP SCHEMA shape_evil CASCADE;
DROP ROLE shape_app;
DELETE FROM key_audit;
DROP TRIGGER audit_keys ON payments.idempotency_keys;
SELECT outcome FROM payments.idempotency_begin('shape-4', '{}');
SELECT count(*) AS audited_after_drop FROM key_audit;

-- A CHECK constraint a DBA added is checked for begin's insert.
ALTER TABLE payments.idempotency_keys
    ADD CONSTRAINT no_test_scope CHECK (scope <> 'forbidden');
SELECT pg_temp.try($$SELECT outcome FROM payments.idempotency_begin('shape-5', '{}', 'forbidden')$$);
SELECT outcome FROM payments.idempotency_begin('shape-5', '{}', 'allowed');
ALTER TABLE payments.idempotency_keys DROP CONSTRAINT no_test_scope;
SELECT outcome FROM payments.idempotency_begin('shape-5', '{}', 'forbidden');

-- A column of another type: every call still works, through SQL.
ALTER TABLE payments.idempotency_keys ALTER COLUMN recovery_point TYPE varchar(300);
SELECT outcome FROM payments.idempotency_begin('shape-6', '{"n": 6}');
SELECT payments.idempotency_checkpoint('shape-6', 'charged');
UPDATE payments.idempotency_keys SET locked_until = now() - interval '1 second'
WHERE key = 'shape-6';
SELECT outcome, recovery_point FROM payments.idempotency_begin('shape-6', '{"n": 6}');
SELECT payments.idempotency_complete('shape-6', '{"charge": "ch_6"}');
SELECT outcome, response FROM payments.idempotency_begin('shape-6', '{"n": 6}');
ALTER TABLE payments.idempotency_keys ALTER COLUMN recovery_point TYPE text;

-- Row security on the table: begin goes through SQL, as the owner.
ALTER TABLE payments.idempotency_keys ENABLE ROW LEVEL SECURITY;
SELECT outcome FROM payments.idempotency_begin('shape-7', '{}');
SELECT pg_temp.try($$SELECT outcome FROM payments.idempotency_begin('shape-7', '{}')$$);
ALTER TABLE payments.idempotency_keys DISABLE ROW LEVEL SECURITY;

-- The table taken away (as only a superuser could): a clear error, 42P01.
BEGIN;
ALTER EXTENSION payments DROP TABLE payments.idempotency_keys;
DROP TABLE payments.idempotency_keys;
SELECT pg_temp.try($$SELECT outcome FROM payments.idempotency_begin('shape-8', '{}')$$);
ROLLBACK;
SELECT outcome FROM payments.idempotency_begin('shape-8', '{}');

-- The table is as the install script made it again.
SELECT count(*) AS extra_indexes FROM pg_index
WHERE indrelid = 'payments.idempotency_keys'::regclass
  AND indexrelid::regclass::text NOT IN ('payments.idempotency_keys_pkey',
                                         'payments.idempotency_keys_expires_at_idx');
SELECT pg_catalog.format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'payments.idempotency_keys'::regclass AND attname = 'recovery_point';
DELETE FROM payments.idempotency_keys WHERE key LIKE 'shape-%';
