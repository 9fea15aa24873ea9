-- Every function that writes, called in a read-only transaction (as on a
-- standby, or with default_transaction_read_only): SQLSTATE 25006, the
-- function's name and a hint about the primary, never an internal
-- statement's "cannot execute UPDATE".  Reads still answer.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    hint text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN hint LIKE '%primary%' THEN ' (hint: the primary)' ELSE '' END;
END $$;
INSERT INTO payments.webhook_endpoints (name, scheme) VALUES ('ro', 'github');
SELECT outcome FROM payments.idempotency_begin('ro-done', '{}');
SELECT payments.idempotency_complete('ro-done', '{"ok": true}');
SELECT payments.saga_start('ro', '[{"name": "a"}]', saga_id => 'ro-saga');

SET default_transaction_read_only = on;
SELECT f, pg_temp.try(f) AS result FROM (VALUES
    ($$SELECT payments.idempotency_begin('ro-new', '{}')$$),
    ($$SELECT payments.idempotency_checkpoint('ro-done', 'x')$$),
    ($$SELECT payments.idempotency_complete('ro-done', '{}')$$),
    ($$SELECT payments.idempotency_fail('ro-done', '{}', false)$$),
    ($$SELECT payments.idempotency_purge()$$),
    ($$SELECT * FROM payments.webhook_receive('ro', '{}', '\x')$$),
    ($$SELECT payments.webhook_purge()$$),
    ($$SELECT payments.webhook_secret_add('ro', 'a-secret')$$),
    ($$SELECT payments.webhook_secret_rotate('ro', 'a-secret')$$),
    ($$SELECT payments.webhook_secret_remove('ro', 1)$$),
    ($$SELECT * FROM payments.fraud_evaluate('{}')$$),
    ($$SELECT payments.fraud_purge(now())$$),
    ($$SELECT payments.reconcile('2026-11-30', '2026-12-01')$$),
    ($$SELECT payments.saga_start('ro', '[{"name": "a"}]')$$),
    ($$SELECT payments.saga_record('ro-saga', 'a', 'succeeded')$$),
    ($$SELECT * FROM payments.saga_recoverable()$$)) AS t(f);
-- what only reads still answers: a replay, a what-if, saga_next
SELECT outcome, response FROM payments.idempotency_begin('ro-done', '{}');
SELECT decision FROM payments.fraud_evaluate('{}', record => false);
SELECT action, step FROM payments.saga_next('ro-saga');
RESET default_transaction_read_only;

DELETE FROM payments.webhook_endpoints WHERE name = 'ro';
DELETE FROM payments.idempotency_keys WHERE key LIKE 'ro-%';
DELETE FROM payments.sagas WHERE id = 'ro-saga';
