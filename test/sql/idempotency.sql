-- idempotency: every outcome and every error of the idempotency_* functions
-- in one session.  Races between sessions are in test/specs; crashes in
-- test/t/010_idempotency_crash.pl.  Leases and expiry are moved into the
-- past by updating the table (as the superuser running the test) rather
-- than by waiting, except once, to show a real lease running out.

-- errors as "SQLSTATE: message", to show the code of every failure
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- counters before, to show what this test added
CREATE TEMP TABLE stats_before AS SELECT name, value FROM payments.stats;

-- the table and its constraints
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, co.collname
FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = 'payments.idempotency_keys'::regclass AND a.attnum > 0
ORDER BY a.attnum;
SELECT conname, contype FROM pg_constraint
WHERE conrelid = 'payments.idempotency_keys'::regclass ORDER BY conname;
SELECT indexrelid::regclass AS index FROM pg_index
WHERE indrelid = 'payments.idempotency_keys'::regclass ORDER BY 1;

-- a new key starts; the same request again while in flight is PM002
SELECT outcome, recovery_point, response, error, created_at IS NOT NULL AS has_created
FROM payments.idempotency_begin('order-1', '{"amount": 1000, "currency": "EUR"}');
SELECT * FROM payments.idempotency_begin('order-1', '{"amount": 1000, "currency": "EUR"}');
-- the same request spelled differently is the same request (still PM002)
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('order-1',
    '{ "currency":"EUR",
       "amount" : 1000 }')$$);
-- a different request under the key is PM001, and the body is not echoed
SELECT * FROM payments.idempotency_begin('order-1', '{"amount": 9999, "currency": "EUR"}');
-- stored fingerprint is the SHA-256 of jsonb's canonical text
SELECT fingerprint = sha256(convert_to('{"amount": 1000, "currency": "EUR"}'::jsonb::text, 'UTF8'))
       AS fingerprint_is_sha256,
       state, recovery_point, lease, locked_until > now() AS leased,
       expires_at > now() + interval '23 hours' AS expires_in_a_day
FROM payments.idempotency_keys WHERE key = 'order-1';

-- checkpoint records progress; complete stores the response
SELECT payments.idempotency_checkpoint('order-1', 'charge-created');
SELECT recovery_point FROM payments.idempotency_keys WHERE key = 'order-1';
SELECT payments.idempotency_complete('order-1', '{"charge": "ch_1", "status": "succeeded"}');
SELECT state, locked_until IS NULL AS lease_cleared
FROM payments.idempotency_keys WHERE key = 'order-1';

-- a completed key replays its response, however often, and never restarts
SELECT outcome, recovery_point, response, error
FROM payments.idempotency_begin('order-1', '{"currency": "EUR", "amount": 1000}');
SELECT outcome, response
FROM payments.idempotency_begin('order-1', '{"amount": 1000, "currency": "EUR"}');
-- a different request under a completed key is still PM001
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('order-1', '{"amount": 1}')$$);
-- 1.0 and 1.00 are different numbers to jsonb, so different requests
SELECT outcome FROM payments.idempotency_begin('num', '{"amount": 1.0}');
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('num', '{"amount": 1.00}')$$);

-- complete, fail and checkpoint need an in_flight key: PM003 otherwise,
-- with a detail that says what the key is
SELECT payments.idempotency_complete('order-1', '{"charge": "ch_2"}');
SELECT payments.idempotency_complete('no-such-key', '{}');
SELECT pg_temp.try($$SELECT payments.idempotency_fail('order-1', '{}', true)$$);
SELECT pg_temp.try($$SELECT payments.idempotency_fail('order-1', '{}', false)$$);
SELECT pg_temp.try($$SELECT payments.idempotency_checkpoint('order-1', 'x')$$);
SELECT pg_temp.try($$SELECT payments.idempotency_checkpoint('no-such-key', 'x')$$);
-- the response was not overwritten by the refused complete
SELECT response FROM payments.idempotency_keys WHERE key = 'order-1';

-- a terminal failure is stored and replayed exactly, in every detail
SELECT outcome FROM payments.idempotency_begin('order-2', '{"amount": 5}');
SELECT payments.idempotency_fail('order-2',
    '{"code": "card_declined", "decline_code": "insufficient_funds", "amount": 5.00, "retry": false}',
    false);
SELECT outcome, response, error,
       error = '{"code": "card_declined", "decline_code": "insufficient_funds", "amount": 5.00, "retry": false}'::jsonb
       AS exactly_as_stored
FROM payments.idempotency_begin('order-2', '{"amount": 5}');
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('order-2', '{"amount": 6}')$$);
SELECT pg_temp.try($$SELECT payments.idempotency_complete('order-2', '{}')$$);

-- a retriable failure frees the key: the retry starts again
SELECT outcome FROM payments.idempotency_begin('order-3', '{"amount": 7}');
SELECT payments.idempotency_fail('order-3', '{"code": "gateway_timeout"}', true);
SELECT count(*) AS rows_left FROM payments.idempotency_keys WHERE key = 'order-3';
SELECT outcome FROM payments.idempotency_begin('order-3', '{"amount": 7}');
-- a retriable failure needs no error document
SELECT payments.idempotency_fail('order-3', NULL, true);
SELECT outcome FROM payments.idempotency_begin('order-3', '{"amount": 7}');

-- a lease that runs out: the next caller resumes at the last recovery point
SELECT outcome FROM payments.idempotency_begin('order-4', '{"amount": 8}',
                                               lease => '200 milliseconds');
SELECT payments.idempotency_checkpoint('order-4', 'step-2');
SELECT pg_sleep(0.5);
SELECT outcome, recovery_point, response, error
FROM payments.idempotency_begin('order-4', '{"amount": 8}', lease => '1 hour');
-- the resumer holds a new lease (its own interval): others are refused
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('order-4', '{"amount": 8}')$$);
SELECT lease, locked_until > now() + interval '50 minutes' AS renewed
FROM payments.idempotency_keys WHERE key = 'order-4';
-- a takeover keeps the fingerprint: a different request is still PM001
UPDATE payments.idempotency_keys SET locked_until = now() - interval '1 second'
WHERE key = 'order-4';
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('order-4', '{"amount": 9}')$$);
-- checkpoint after the lease ran out (nobody took over) renews it for the
-- interval given at begin
SELECT payments.idempotency_checkpoint('order-4', 'step-3');
SELECT recovery_point, locked_until > now() + interval '50 minutes' AS renewed
FROM payments.idempotency_keys WHERE key = 'order-4';
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('order-4', '{"amount": 8}')$$);
SELECT payments.idempotency_complete('order-4', '{"charge": "ch_4"}');
SELECT outcome, recovery_point, response FROM payments.idempotency_begin('order-4', '{"amount": 8}');

-- expiry: an expired key behaves as absent at once, before any purge,
-- whatever its state and request
SELECT outcome FROM payments.idempotency_begin('exp-completed', '{"a": 1}');
SELECT payments.idempotency_complete('exp-completed', '{"r": 1}');
SELECT outcome FROM payments.idempotency_begin('exp-failed', '{"a": 1}');
SELECT payments.idempotency_fail('exp-failed', '{"e": 1}', false);
SELECT outcome FROM payments.idempotency_begin('exp-flight', '{"a": 1}');
UPDATE payments.idempotency_keys
SET expires_at = now() - interval '1 second',
    locked_until = CASE WHEN state = 'in_flight' THEN now() - interval '1 second' END
WHERE key LIKE 'exp-%';
SELECT k, b.outcome, b.response, b.error
FROM (VALUES ('exp-completed'), ('exp-failed'), ('exp-flight')) AS v(k),
     payments.idempotency_begin(k, '{"a": 2}') AS b ORDER BY k;
SELECT key, state, recovery_point, response, error, expires_at > now() AS fresh
FROM payments.idempotency_keys WHERE key LIKE 'exp-%' ORDER BY key;
-- an expired in_flight key cannot be completed: it behaves as absent
UPDATE payments.idempotency_keys
SET expires_at = now() - interval '1 second', locked_until = now() - interval '1 second'
WHERE key = 'exp-flight';
SELECT payments.idempotency_complete('exp-flight', '{}');
-- but an in_flight key never expires while its lease runs
UPDATE payments.idempotency_keys
SET expires_at = now() - interval '1 second', locked_until = now() + interval '1 hour'
WHERE key = 'exp-completed';
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('exp-completed', '{"a": 3}')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('exp-completed', '{"a": 2}')$$);
SELECT payments.idempotency_complete('exp-completed', '{"r": 2}');

-- scopes are separate namespaces for keys
SELECT outcome FROM payments.idempotency_begin('shared', '{"a": 1}', scope => 'merchant-a');
SELECT outcome FROM payments.idempotency_begin('shared', '{"b": 2}', scope => 'merchant-b');
SELECT payments.idempotency_complete('shared', '{"from": "a"}', scope => 'merchant-a');
SELECT pg_temp.try($$SELECT payments.idempotency_complete('shared', '{}')$$);
SELECT outcome, response FROM payments.idempotency_begin('shared', '{"a": 1}', scope => 'merchant-a');
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('shared', '{"a": 1}', scope => 'merchant-b')$$);

-- the same new key twice in one statement: the second call sees the first
SELECT g, pg_temp.try(format($$SELECT * FROM payments.idempotency_begin('twice', '{}')$$))
FROM generate_series(1, 2) g;
SELECT b.outcome FROM generate_series(1, 3) g,
     payments.idempotency_begin('many-' || g, '{}') AS b;
-- in a select list, and under a LIMIT
SELECT (payments.idempotency_begin('in-select', '{}')).outcome;
SELECT (payments.idempotency_begin('in-select', '{}')).outcome;
SELECT (payments.idempotency_begin('sel-' || g, '{}')).outcome
FROM generate_series(1, 3) g LIMIT 2;
SELECT key FROM payments.idempotency_keys WHERE key LIKE 'sel-%' ORDER BY key;
-- next to another set-returning function, begin still runs once
SELECT (payments.idempotency_begin('beside-srf', '{}')).outcome, generate_series(1, 3) AS n;
SELECT count(*) AS beside_srf_rows FROM payments.idempotency_keys WHERE key = 'beside-srf';
SELECT payments.idempotency_complete('in-select', '[]');
SELECT (payments.idempotency_begin('in-select', '{}')).response LIMIT 1;
-- large documents (stored out of line, compressed) replay intact
SELECT outcome FROM payments.idempotency_begin('large',
    jsonb_build_object('items', (SELECT jsonb_agg(g) FROM generate_series(1, 20000) g)));
SELECT payments.idempotency_complete('large',
    jsonb_build_object('receipt', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 5000) g)));
SELECT outcome, length(response ->> 'receipt') AS receipt_length,
       response = jsonb_build_object('receipt', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 5000) g)) AS intact
FROM payments.idempotency_begin('large',
    jsonb_build_object('items', (SELECT jsonb_agg(g) FROM generate_series(1, 20000) g)));
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('large',
    jsonb_build_object('items', (SELECT jsonb_agg(g) FROM generate_series(1, 20001) g)))$$);
-- any jsonb is a request, scalars and null included
SELECT outcome FROM payments.idempotency_begin('scalar', 'null');
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('scalar', '"null"')$$);

-- bad arguments are 22023 and never a silent bypass
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin(NULL, '{}')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('', '{}')$$);
SELECT pg_temp.try(format($$SELECT * FROM payments.idempotency_begin(%L, '{}')$$, repeat('k', 256)));
SELECT pg_temp.try(format($$SELECT * FROM payments.idempotency_begin(%L, '{}')$$, repeat('k', 255)));
-- the limit is in characters, not bytes
SELECT pg_temp.try(format($$SELECT * FROM payments.idempotency_begin(%L, '{}')$$, repeat('é', 255)));
SELECT pg_temp.try(format($$SELECT * FROM payments.idempotency_begin(%L, '{}')$$, repeat('é', 256)));
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('k', '{}', scope => NULL)$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('k', '{}', scope => '')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('k', NULL)$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('k', '{}', ttl => '0')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('k', '{}', ttl => '-1 hour')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('k', '{}', ttl => NULL)$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('k', '{}', lease => '0')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('k', '{}', lease => '1 day -24 hours')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('k', '{}', lease => NULL)$$);
SELECT pg_temp.try($$SELECT payments.idempotency_checkpoint(NULL, 'x')$$);
SELECT pg_temp.try($$SELECT payments.idempotency_checkpoint('k', NULL)$$);
SELECT pg_temp.try($$SELECT payments.idempotency_complete('', '{}')$$);
SELECT pg_temp.try($$SELECT payments.idempotency_complete('k', NULL)$$);
SELECT pg_temp.try($$SELECT payments.idempotency_complete('k', '{}', NULL)$$);
SELECT pg_temp.try($$SELECT payments.idempotency_fail(NULL, '{}', true)$$);
SELECT pg_temp.try($$SELECT payments.idempotency_fail('k', '{}', NULL)$$);
SELECT pg_temp.try($$SELECT payments.idempotency_fail('k', NULL, false)$$);
SELECT pg_temp.try($$SELECT payments.idempotency_purge(NULL)$$);
-- none of the refused calls created a key
SELECT count(*) AS stray_keys FROM payments.idempotency_keys WHERE key = 'k';

-- begin writes, so it is refused in a read-only transaction
BEGIN TRANSACTION READ ONLY;
SELECT * FROM payments.idempotency_begin('read-only', '{}');
ROLLBACK;
-- but a replay in a read-only transaction needs no write
BEGIN TRANSACTION READ ONLY;
SELECT outcome FROM payments.idempotency_begin('order-1', '{"amount": 1000, "currency": "EUR"}');
ROLLBACK;
-- a begin rolled back leaves nothing behind
BEGIN;
SELECT outcome FROM payments.idempotency_begin('rolled-back', '{}');
ROLLBACK;
SELECT outcome FROM payments.idempotency_begin('rolled-back', '{"other": true}');

-- purge deletes expired keys only: not unexpired ones, not in_flight keys
-- whose lease runs, and never keys that expire after now even when asked
TRUNCATE payments.idempotency_keys;
SELECT count(*) FROM generate_series(1, 25000) g,
     payments.idempotency_begin('p-' || g, '{}', ttl => '1 hour');
UPDATE payments.idempotency_keys SET state = 'completed', response = '{}',
    locked_until = NULL, expires_at = now() - interval '1 minute'
WHERE key LIKE 'p-%' AND substr(key, 3)::int <= 21000;
UPDATE payments.idempotency_keys SET expires_at = now() - interval '1 minute'
WHERE key IN ('p-21001', 'p-21002');
SELECT payments.idempotency_purge(now() - interval '1 hour');
SELECT payments.idempotency_purge();
SELECT count(*) AS kept, count(*) FILTER (WHERE expires_at < now()) AS kept_expired_leased
FROM payments.idempotency_keys;
SELECT payments.idempotency_purge(now() + interval '1 day');
SELECT count(*) AS kept FROM payments.idempotency_keys;
-- a purged key starts again
SELECT outcome FROM payments.idempotency_begin('p-1', '{"new": true}');

-- privileges: an application role calls the functions but cannot touch
-- the table or purge
CREATE ROLE payments_idem_app;
SET ROLE payments_idem_app;
SELECT outcome FROM payments.idempotency_begin('app-1', '{"amount": 1}');
SELECT payments.idempotency_complete('app-1', '{"ok": true}');
SELECT outcome, response FROM payments.idempotency_begin('app-1', '{"amount": 1}');
SELECT pg_temp.try($$SELECT count(*) FROM payments.idempotency_keys$$);
SELECT pg_temp.try($$UPDATE payments.idempotency_keys SET state = 'failed'$$);
SELECT pg_temp.try($$SELECT payments.idempotency_purge()$$);
-- a hostile search_path changes nothing
RESET ROLE;
CREATE SCHEMA payments_idem_evil AUTHORIZATION payments_idem_app;
CREATE TABLE payments_idem_evil.idempotency_keys
    (LIKE payments.idempotency_keys INCLUDING ALL);
ALTER TABLE payments_idem_evil.idempotency_keys OWNER TO payments_idem_app;
SET ROLE payments_idem_app;
SET search_path = payments_idem_evil, pg_catalog;
SELECT outcome FROM payments.idempotency_begin('app-2', '{}');
SELECT payments.idempotency_complete('app-2', '{}');
SELECT outcome FROM payments.idempotency_begin('app-2', '{}');
SELECT count(*) AS evil_rows FROM payments_idem_evil.idempotency_keys;
RESET search_path;
RESET ROLE;
DROP SCHEMA payments_idem_evil CASCADE;
DROP ROLE payments_idem_app;

-- the table is dumped with the extension's data
SELECT 'payments.idempotency_keys'::regclass = ANY (extconfig) AS dumped
FROM pg_extension WHERE extname = 'payments';

-- what this test counted (the library is preloaded)
SELECT s.name, s.value - coalesce(b.value, 0) AS counted
FROM payments.stats s LEFT JOIN stats_before b USING (name)
WHERE s.name LIKE 'idempotency%' ORDER BY s.name;

TRUNCATE payments.idempotency_keys;
