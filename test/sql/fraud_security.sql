-- Fraud scoring for an application role with no rights on the tables:
-- it can evaluate, it cannot read or change rules, lists or the audit
-- trail, and it cannot move the clock of what it records.
-- Start from empty fraud tables, whatever ran before.
TRUNCATE payments.fraud_rules, payments.fraud_lists,
    payments.fraud_evaluations, payments.fraud_velocity;
INSERT INTO payments.fraud_lists (list_name, value) VALUES ('blocked', 'evil@example.com');
INSERT INTO payments.fraud_rules (name, kind, params, position) VALUES
    ('blocked_email', 'blocklist', '{"field": "email", "list": "blocked"}', 1),
    ('per_user', 'velocity', '{"key": "user_id", "window": "1 hour", "max_count": 1}', 2),
    ('folded', 'expression', '{"expr": "email IN LIST ''blocked''"}', 3);

CREATE ROLE payments_fraud_app;
SET ROLE payments_fraud_app;
SELECT decision, blocked_by, evaluation_id IS NOT NULL AS recorded
    FROM payments.fraud_evaluate('{"email": "EVIL@example.com", "user_id": 1}');
SELECT decision, blocked_by FROM payments.fraud_evaluate('{"user_id": 1}');
-- what-if evaluations may be at any time; recorded ones only now()
SELECT decision FROM payments.fraud_evaluate('{"user_id": 1}', now() - interval '1 day', false);
SELECT decision FROM payments.fraud_evaluate('{"user_id": 1}', now() - interval '2 hours');
SELECT decision FROM payments.fraud_evaluate('{"user_id": 1}', now() + interval '2 hours');
SELECT decision FROM payments.fraud_evaluate('{"user_id": 1}', now());
-- the tables, the view and the other functions are not the application's
SELECT count(*) FROM payments.fraud_rules;
SELECT count(*) FROM payments.fraud_lists;
SELECT count(*) FROM payments.fraud_evaluations;
SELECT count(*) FROM payments.fraud_velocity;
SELECT count(*) FROM payments.fraud_rule_hits;
INSERT INTO payments.fraud_lists (list_name, value) VALUES ('allow', 'me');
DELETE FROM payments.fraud_rules;
SELECT * FROM payments.fraud_backtest('{"kind": "avs_cvv", "params": {}}', now());
SELECT payments.fraud_purge(now());
-- a function of the caller's search_path does not replace the module's
CREATE TEMP TABLE fraud_lists (list_name text, value text);
CREATE FUNCTION pg_temp.lower(text) RETURNS text LANGUAGE sql AS 'SELECT ''evil@example.com''';
SET search_path = pg_temp, pg_catalog;
SELECT decision, blocked_by FROM payments.fraud_evaluate('{"email": "good@example.com"}', record => false);
RESET search_path;
DROP TABLE pg_temp.fraud_lists;
DROP FUNCTION pg_temp.lower(text);
RESET ROLE;

SELECT count(*) AS recorded FROM payments.fraud_evaluations;
DROP ROLE payments_fraud_app;

TRUNCATE payments.fraud_rules, payments.fraud_lists,
    payments.fraud_evaluations, payments.fraud_velocity;
