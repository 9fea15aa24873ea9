-- Sagas: every transition and every error of the state machine, retries,
-- compensation in reverse order with skipped steps, failed compensation and
-- its alert, idempotent start, step keys, recovery claims, the append-only
-- log and privileges.
TRUNCATE payments.sagas CASCADE;

-- a checkout: ship has no compensation
\set steps '[{"name": "reserve", "compensable": true}, {"name": "authorize"}, {"name": "capture", "compensable": true}, {"name": "ship", "compensable": false}]'

-- 1. the happy path, with a transient failure of authorize retried
SELECT payments.saga_start('checkout', :'steps', '{"order": 1001}', 'ok-1') AS id;
SELECT * FROM payments.saga_next('ok-1');
SELECT payments.saga_record('ok-1', 'reserve', 'succeeded', '{"reservation": "r-1"}');
SELECT * FROM payments.saga_next('ok-1');
SELECT payments.saga_step_key('ok-1', step, attempt) FROM payments.saga_next('ok-1');
SELECT payments.saga_record('ok-1', 'authorize', 'failed', '{"retriable": true, "error": "gateway timeout"}');
SELECT * FROM payments.saga_next('ok-1');
SELECT payments.saga_step_key('ok-1', step, attempt) FROM payments.saga_next('ok-1');
SELECT payments.saga_record('ok-1', 'authorize', 'succeeded');
SELECT payments.saga_record('ok-1', 'capture', 'succeeded');
SELECT payments.saga_record('ok-1', 'ship', 'succeeded');
SELECT * FROM payments.saga_next('ok-1');
SELECT event, step, attempt, from_state, to_state, detail
    FROM payments.saga_events WHERE saga_id = 'ok-1' ORDER BY id;
SELECT name, state, context, position, attempts, failed_step FROM payments.sagas WHERE id = 'ok-1';

-- 2. not allowed: out of order, a second success, after the end
SELECT payments.saga_start('checkout', :'steps', saga_id => 'bad-1');
SELECT payments.saga_record('bad-1', 'authorize', 'succeeded');
SELECT payments.saga_record('bad-1', 'reserve', 'succeeded');
SELECT payments.saga_record('bad-1', 'reserve', 'succeeded');
SELECT payments.saga_record('bad-1', 'no_such_step', 'failed');
SELECT payments.saga_record('ok-1', 'ship', 'succeeded');
SELECT payments.saga_record('ok-1', 'reserve', 'failed');
-- nothing of the refused calls is in the log
SELECT count(*) AS events FROM payments.saga_events WHERE saga_id = 'bad-1';

-- 3. a shipment failure after capture: capture, authorize, reserve are
-- compensated in reverse order; ship itself failed, so nothing to undo there
SELECT payments.saga_start('checkout', :'steps', saga_id => 'comp-1');
SELECT payments.saga_record('comp-1', 'reserve', 'succeeded');
SELECT payments.saga_record('comp-1', 'authorize', 'succeeded');
SELECT payments.saga_record('comp-1', 'capture', 'succeeded');
SELECT payments.saga_record('comp-1', 'ship', 'failed', '{"error": "carrier refused the parcel"}');
SELECT * FROM payments.saga_next('comp-1');
-- running the failed or a later step is not what it waits for now
SELECT payments.saga_record('comp-1', 'ship', 'succeeded');
SELECT payments.saga_record('comp-1', 'reserve', 'succeeded');
SELECT payments.saga_record('comp-1', 'capture', 'succeeded', '{"refund": "re_1"}');
SELECT * FROM payments.saga_next('comp-1');
-- a failed compensation is tried again
SELECT payments.saga_record('comp-1', 'authorize', 'failed', '{"error": "void timed out"}');
SELECT * FROM payments.saga_next('comp-1');
SELECT payments.saga_record('comp-1', 'authorize', 'succeeded');
SELECT payments.saga_record('comp-1', 'reserve', 'succeeded');
SELECT * FROM payments.saga_next('comp-1');
SELECT event, step, attempt, from_state, to_state
    FROM payments.saga_events WHERE saga_id = 'comp-1' ORDER BY id;
SELECT state, failed_step FROM payments.sagas WHERE id = 'comp-1';

-- 4. non-compensable steps are skipped; a failure with nothing to undo
-- ends compensated at once
SELECT payments.saga_start('notify', '[{"name": "email", "compensable": false}, {"name": "sms", "compensable": false}, {"name": "charge"}]', saga_id => 'skip-1');
SELECT payments.saga_record('skip-1', 'email', 'succeeded');
SELECT payments.saga_record('skip-1', 'sms', 'succeeded');
SELECT payments.saga_record('skip-1', 'charge', 'failed');
SELECT * FROM payments.saga_next('skip-1');
SELECT payments.saga_start('mixed', '[{"name": "a"}, {"name": "b", "compensable": false}, {"name": "c"}]', saga_id => 'skip-2');
SELECT payments.saga_record('skip-2', 'a', 'succeeded');
SELECT payments.saga_record('skip-2', 'b', 'succeeded');
SELECT payments.saga_record('skip-2', 'c', 'failed');
SELECT * FROM payments.saga_next('skip-2');
SELECT payments.saga_record('skip-2', 'a', 'succeeded');
-- the first step failing has nothing to compensate
SELECT payments.saga_start('one', '[{"name": "only"}]', saga_id => 'first-1');
SELECT payments.saga_record('first-1', 'only', 'failed');

-- 5. retries run out: a step failing retriably more than
-- payments.saga_step_attempts times compensates
SET payments.saga_step_attempts = 2;
SELECT payments.saga_start('retry', '[{"name": "reserve"}, {"name": "authorize"}]', saga_id => 'retry-1');
SELECT payments.saga_record('retry-1', 'reserve', 'succeeded');
SELECT payments.saga_record('retry-1', 'authorize', 'failed', '{"retriable": true}');
SELECT * FROM payments.saga_next('retry-1');
SELECT payments.saga_record('retry-1', 'authorize', 'failed', '{"retriable": true}');
SELECT * FROM payments.saga_next('retry-1');
RESET payments.saga_step_attempts;
-- "retriable" must be the boolean true
SELECT payments.saga_start('retry', '[{"name": "x"}]', saga_id => 'retry-2');
SELECT payments.saga_record('retry-2', 'x', 'failed', '{"retriable": "yes"}');

-- 6. a compensation failing payments.saga_compensation_attempts times:
-- failed_compensation (the alert to listeners is in
-- test/specs/saga_recover.spec, where its output is stable)
SET payments.saga_compensation_attempts = 2;
SELECT payments.saga_start('alert', '[{"name": "authorize"}, {"name": "capture"}]', saga_id => 'alert-1');
SELECT payments.saga_record('alert-1', 'authorize', 'succeeded');
SELECT payments.saga_record('alert-1', 'capture', 'failed');
SELECT payments.saga_record('alert-1', 'authorize', 'failed');
SELECT payments.saga_record('alert-1', 'authorize', 'failed');
SELECT * FROM payments.saga_next('alert-1');
SELECT payments.saga_record('alert-1', 'authorize', 'succeeded');
RESET payments.saga_compensation_attempts;

-- 7. saga_start is idempotent on saga_id: the same steps return the
-- saga as it is; other steps or another name are an error
SELECT payments.saga_start('checkout', :'steps', '{"order": 9}', 'ok-1');
SELECT state FROM payments.sagas WHERE id = 'ok-1';
SELECT payments.saga_start('checkout', '[{"name": "reserve"}]', saga_id => 'ok-1');
SELECT payments.saga_start('refund', :'steps', saga_id => 'ok-1');
-- without an id, a new random one each time
SELECT payments.saga_start('anon', '[{"name": "x"}]') <> payments.saga_start('anon', '[{"name": "x"}]') AS fresh_ids;
SELECT length(payments.saga_start('anon', '[{"name": "x"}]')) AS uuid_length;
-- card data in the context or a detail is stored masked
SELECT payments.saga_start('pci', '[{"name": "x"}]', '{"note": "card 4111 1111 1111 1111, cvv: 123"}', 'pci-1');
SELECT context FROM payments.sagas WHERE id = 'pci-1';
SELECT payments.saga_record('pci-1', 'x', 'failed', '{"gateway": "declined 5555555555554444"}');
SELECT detail FROM payments.saga_events WHERE saga_id = 'pci-1' AND event = 'step_failed';

-- 8. errors
SELECT payments.saga_start(NULL, :'steps');
SELECT payments.saga_start('x', NULL);
SELECT payments.saga_start('', :'steps');
SELECT payments.saga_start('x', :'steps', saga_id => '');
SELECT payments.saga_start('x', :'steps', saga_id => repeat('i', 201));
SELECT payments.saga_start('x', '[]');
SELECT payments.saga_start('x', '{"name": "a"}');
SELECT payments.saga_start('x', '"a"');
SELECT payments.saga_start('x', '[1]');
SELECT payments.saga_start('x', '[{"name": ""}]');
SELECT payments.saga_start('x', '[{"nom": "a"}]');
SELECT payments.saga_start('x', '[{"name": "a"}, {"name": "a"}]');
SELECT payments.saga_start('x', '[{"name": "a", "compensable": "yes"}]');
SELECT payments.saga_start('x', (SELECT jsonb_agg(jsonb_build_object('name', 's' || g)) FROM generate_series(1, 1001) g));
SELECT payments.saga_next(NULL);
SELECT payments.saga_next('no-such-saga');
SELECT payments.saga_record('no-such-saga', 'x', 'succeeded');
SELECT payments.saga_record('ok-1', NULL, 'succeeded');
SELECT payments.saga_record(NULL, 'x', 'succeeded');
SELECT payments.saga_record('bad-1', 'authorize', NULL);
SELECT payments.saga_record('bad-1', 'authorize', 'done');
SELECT * FROM payments.saga_recoverable(NULL);
SELECT * FROM payments.saga_recoverable('-1 minute');
SELECT sqlstate, name, http_status FROM payments.error_codes WHERE sqlstate LIKE 'PM03%' ORDER BY 1;
BEGIN READ ONLY;
SELECT payments.saga_start('x', :'steps');
ROLLBACK;

-- 9. recovery: in-flight sagas without progress for the interval are
-- claimed, once, with what to do next; finished ones never
DELETE FROM payments.sagas WHERE name = 'anon';
UPDATE payments.sagas SET updated_at = now() - interval '1 hour';
SELECT saga_id, name, action, step, attempt, state
    FROM payments.saga_recoverable('5 minutes') ORDER BY saga_id;
-- claimed for the interval: a second caller gets none of them
SELECT count(*) AS claimed_again FROM payments.saga_recoverable('5 minutes');
SELECT id, claimed_by LIKE current_user || ' (pid %)' AS claimed_by_me
    FROM payments.sagas WHERE claimed_until IS NOT NULL ORDER BY id;
-- progress clears the claim; a claim that ran out can be taken again
SELECT payments.saga_record('bad-1', 'authorize', 'succeeded');
SELECT claimed_until IS NULL AS unclaimed FROM payments.sagas WHERE id = 'bad-1';
UPDATE payments.sagas SET claimed_until = now() - interval '1 second' WHERE id = 'retry-1';
SELECT saga_id FROM payments.saga_recoverable('5 minutes');
-- nothing is stale for a long interval
SELECT count(*) FROM payments.saga_recoverable('1 day');

-- 10. the log is append-only; a saga's events go with the saga
UPDATE payments.saga_events SET detail = '{}' WHERE saga_id = 'ok-1';
DELETE FROM payments.saga_events WHERE saga_id = 'ok-1';
DELETE FROM payments.sagas WHERE id = 'ok-1';
SELECT count(*) AS events_of_deleted FROM payments.saga_events WHERE saga_id = 'ok-1';

-- 11. an application role orchestrates, and cannot write the tables
CREATE ROLE payments_saga_app;
SET ROLE payments_saga_app;
SELECT payments.saga_start('app', '[{"name": "a"}, {"name": "b"}]', saga_id => 'app-1');
SELECT payments.saga_record('app-1', 'a', 'succeeded');
SELECT action, step FROM payments.saga_next('app-1');
UPDATE payments.sagas SET state = 'completed' WHERE id = 'app-1';
INSERT INTO payments.saga_events (saga_id, event, to_state) VALUES ('app-1', 'forged', 'completed');
SELECT count(*) FROM payments.sagas;
SELECT count(*) FROM payments.saga_events;
-- the caller's search_path does not reach the module's SQL
CREATE TEMP TABLE sagas (id text);
SET search_path = pg_temp, pg_catalog;
SELECT payments.saga_record('app-1', 'b', 'succeeded');
RESET search_path;
DROP TABLE pg_temp.sagas;
RESET ROLE;
SELECT state FROM payments.sagas WHERE id = 'app-1';
DROP ROLE payments_saga_app;

-- 12. a table altered by a DBA is read with SQL instead of directly, with
-- the same answers
ALTER TABLE payments.sagas ADD COLUMN note text DEFAULT 'altered';
SELECT payments.saga_start('alt', '[{"name": "a"}, {"name": "b"}]', saga_id => 'alt-1');
SELECT * FROM payments.saga_next('alt-1');
SELECT payments.saga_record('alt-1', 'a', 'succeeded');
SELECT * FROM payments.saga_next('alt-1');
SELECT payments.saga_record('alt-1', 'a', 'succeeded');
SELECT * FROM payments.saga_next('no-such-saga');
ALTER TABLE payments.sagas DROP COLUMN note;
TRUNCATE payments.sagas CASCADE;
