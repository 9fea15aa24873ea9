-- idempotency_token: owner tokens, results that outlive the work, bounds
-- of ttl and lease, payments.idempotency_status and the bounded purge.
-- Times are moved into the past by updating the table (as the superuser
-- running the test), except in the first block, which replays the
-- reported sequence with a real wait.

-- errors as "SQLSTATE: message (detail)"
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' (' || nullif(detail, '') || ')', '');
END $$;

-- A result stored after the ttl ran out (the lease still running) stays
-- replayable for a whole ttl from then: the request never runs again.
SELECT outcome FROM payments.idempotency_begin('r1', '{"amt": 1}', 's',
    ttl => '1 second', lease => '1 hour');
SELECT pg_sleep(1.2);
SELECT payments.idempotency_complete('r1', '{"charge": "ch_1"}', 's');
SELECT outcome, response FROM payments.idempotency_begin('r1', '{"amt": 1}', 's');
SELECT expires_at > clock_timestamp() + interval '0.5 second' AS replayable_for_ttl
FROM payments.idempotency_keys WHERE scope = 's' AND key = 'r1';
-- the same for a terminal failure
SELECT outcome FROM payments.idempotency_begin('r2', '{"amt": 2}', 's', lease => '1 hour');
UPDATE payments.idempotency_keys SET expires_at = now() - interval '1 second'
WHERE scope = 's' AND key = 'r2';
SELECT payments.idempotency_fail('r2', '{"code": "card_declined"}', false, 's');
SELECT outcome, error FROM payments.idempotency_begin('r2', '{"amt": 2}', 's');
SELECT expires_at > now() + interval '23 hours' AS replayable_for_ttl
FROM payments.idempotency_keys WHERE scope = 's' AND key = 'r2';

-- Tokens: started returns one, a replay none.
CREATE TEMP TABLE tok (name text PRIMARY KEY, token uuid);
INSERT INTO tok SELECT 'first', token
FROM payments.idempotency_begin('t1', '{"amt": 100}', ttl => '1 hour', lease => '1 hour');
SELECT token IS NOT NULL AS has_token,
       token::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_v4
FROM tok WHERE name = 'first';
-- checkpoint with the token works; with any other token it is PM003 and
-- changes nothing
SELECT payments.idempotency_checkpoint('t1', 'authorized',
    token => (SELECT token FROM tok WHERE name = 'first'));
SELECT pg_temp.try($$SELECT payments.idempotency_checkpoint('t1', 'forged',
    token => '00000000-0000-4000-8000-000000000000')$$);
SELECT pg_temp.try($$SELECT payments.idempotency_complete('t1', '{"charge": "forged"}',
    token => '00000000-0000-4000-8000-000000000000')$$);
SELECT pg_temp.try($$SELECT payments.idempotency_fail('t1', NULL, true,
    token => '00000000-0000-4000-8000-000000000000')$$);
SELECT state, recovery_point, response FROM payments.idempotency_keys WHERE key = 't1';
-- the owner's lease runs out; a retry takes over with a new token
UPDATE payments.idempotency_keys SET locked_until = now() - interval '1 second'
WHERE key = 't1';
INSERT INTO tok SELECT 'taker', token
FROM payments.idempotency_begin('t1', '{"amt": 100}') WHERE outcome = 'resumed';
SELECT (SELECT token FROM tok WHERE name = 'taker') IS NOT NULL AS taker_has_token,
       (SELECT token FROM tok WHERE name = 'taker') <>
       (SELECT token FROM tok WHERE name = 'first') AS new_token;
-- the late owner's token is dead: PM003, nothing changes
SELECT pg_temp.try($$SELECT payments.idempotency_complete('t1', '{"charge": "late"}',
    token => (SELECT token FROM tok WHERE name = 'first'))$$);
SELECT state, response FROM payments.idempotency_keys WHERE key = 't1';
-- the new owner completes; a replay returns its response and no token
SELECT payments.idempotency_complete('t1', '{"charge": "taker"}',
    token => (SELECT token FROM tok WHERE name = 'taker'));
SELECT outcome, response, token FROM payments.idempotency_begin('t1', '{"amt": 100}');
-- a token of a completed key: PM003 "completed"
SELECT pg_temp.try($$SELECT payments.idempotency_complete('t1', '{"charge": "again"}',
    token => (SELECT token FROM tok WHERE name = 'taker'))$$);

-- A key that expired and was begun again for another request: the first
-- owner's late complete can no longer store its response under it.
INSERT INTO tok SELECT 'r3-old', token
FROM payments.idempotency_begin('r3', '{"amt": 100}', ttl => '1 second', lease => '1 second');
UPDATE payments.idempotency_keys
SET expires_at = now() - interval '1 second', locked_until = now() - interval '1 second'
WHERE key = 'r3';
SELECT outcome, token IS NOT NULL AS has_token
FROM payments.idempotency_begin('r3', '{"amt": 999}');
SELECT pg_temp.try($$SELECT payments.idempotency_complete('r3', '{"charge": "ch_for_amt_100"}',
    token => (SELECT token FROM tok WHERE name = 'r3-old'))$$);
SELECT pg_temp.try($$SELECT outcome FROM payments.idempotency_begin('r3', '{"amt": 999}')$$);
SELECT state, response FROM payments.idempotency_keys WHERE key = 'r3';

-- Without a token the calls act for whoever owns the key, unless
-- payments.idempotency_require_token is on (superuser only).
SELECT outcome FROM payments.idempotency_begin('t2', '{}');
SET payments.idempotency_require_token = on;
SELECT pg_temp.try($$SELECT payments.idempotency_checkpoint('t2', 'x')$$);
SELECT pg_temp.try($$SELECT payments.idempotency_complete('t2', '{}')$$);
SELECT pg_temp.try($$SELECT payments.idempotency_fail('t2', '{}', false)$$);
RESET payments.idempotency_require_token;
SELECT payments.idempotency_complete('t2', '{}');
CREATE ROLE idem_token_app;
SET ROLE idem_token_app;
SELECT pg_temp.try($$SET payments.idempotency_require_token = off$$);
RESET ROLE;

-- ttl and lease: positive and at most 100 years, 22023 either way.
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('big-1', '{}', ttl => '100000000 years')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('big-2', '{}', lease => '101 years')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('big-3', '{}', ttl => '-1 hour')$$);
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_begin('big-4', '{}', lease => '-1 day 23 hours')$$);
SELECT outcome FROM payments.idempotency_begin('big-5', '{}', ttl => '100 years', lease => '100 years');
SELECT outcome FROM payments.idempotency_begin('big-6', '{}', ttl => '-1 day 25 hours');

-- idempotency_status: state and times, never the response; no row for a
-- key that does not exist.
SELECT state, expired, created_at IS NOT NULL AS has_created,
       expires_at > now() AS live, locked_until IS NULL AS unleased, recovery_point
FROM payments.idempotency_status('t1');
SELECT state, expired, locked_until > now() AS leased, recovery_point
FROM payments.idempotency_status('t2');
SELECT state, expired FROM payments.idempotency_status('r1', 's');
UPDATE payments.idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 't2';
SELECT state, expired FROM payments.idempotency_status('t2');
SELECT count(*) FROM payments.idempotency_status('no-such-key');
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_status(NULL)$$);
-- support roles are granted it; applications are not
SET ROLE idem_token_app;
SELECT pg_temp.try($$SELECT * FROM payments.idempotency_status('t1')$$);
SELECT pg_temp.try($$SELECT payments.idempotency_purge()$$);
RESET ROLE;

-- Purge at most max_rows per call, so a scheduler purges in short
-- transactions; NULL means all, a negative number is 22023.
SELECT count(*) FROM generate_series(1, 25) g,
    payments.idempotency_begin('purge-' || g, '{}', scope => 'purge');
SELECT count(*) FROM generate_series(1, 25) g,
    LATERAL (SELECT payments.idempotency_complete('purge-' || g, '{}', 'purge')) c;
UPDATE payments.idempotency_keys SET expires_at = now() - interval '1 hour'
WHERE scope = 'purge';
SELECT payments.idempotency_purge(now(), 10) AS first_call;
SELECT payments.idempotency_purge(now(), 0) AS zero;
SELECT pg_temp.try($$SELECT payments.idempotency_purge(now(), -1)$$);
SELECT payments.idempotency_purge(now(), 10) AS second_call;
SELECT payments.idempotency_purge(now() - interval '1 day') AS none_older;
SELECT payments.idempotency_purge(now(), NULL) AS the_rest;
SELECT count(*) FROM payments.idempotency_keys WHERE scope = 'purge';

DROP ROLE idem_token_app;
DELETE FROM payments.idempotency_keys;
