-- fraud_backtest: how a candidate rule would have decided the recorded
-- evaluations, without enabling it.
-- Start from empty fraud tables, whatever ran before.
TRUNCATE payments.fraud_rules, payments.fraud_lists,
    payments.fraud_evaluations, payments.fraud_velocity;
INSERT INTO payments.fraud_rules (name, kind, params, position) VALUES
    ('big', 'high_amount', '{"threshold": 1000}', 1),
    ('cvv', 'avs_cvv', '{}', 2),
    ('shadow_expr', 'expression', '{"expr": "amount > 100"}', 3),
    ('per_user', 'velocity', '{"key": "user_id", "window": "1 day", "max_count": 100}', 4);
UPDATE payments.fraud_rules SET mode = 'shadow', action = 'block' WHERE name = 'shadow_expr';

-- 40 evaluations: amounts 50..2000, every tenth with a failed CVV, users
-- 1..4, countries alternating.
SELECT e.decision, count(*)
FROM generate_series(1, 40) AS g,
     payments.fraud_evaluate(jsonb_build_object(
        'amount', g * 50, 'user_id', g % 4,
        'cvv_result', CASE WHEN g % 10 = 0 THEN 'fail' ELSE 'pass' END,
        'email', 'u' || g || '@example.com',
        'ip_country', CASE WHEN g % 2 = 0 THEN 'US' ELSE 'FR' END,
        'billing_country', 'US')) AS e
GROUP BY 1 ORDER BY 1;

-- Candidates of every kind; the rules themselves are unchanged.
SELECT * FROM payments.fraud_backtest(
    '{"kind": "expression", "params": {"expr": "ip_country != billing_country AND amount > 500"}, "action": "block"}',
    now() - interval '1 hour');
SELECT * FROM payments.fraud_backtest(
    '{"kind": "expression", "params": {"expr": "ip_country != billing_country"}, "action": "review", "score": 0}',
    now() - interval '1 hour');
SELECT * FROM payments.fraud_backtest(
    '{"kind": "expression", "params": {"expr": "amount > 500"}, "action": "score", "score": 60}',
    now() - interval '1 hour');
SELECT * FROM payments.fraud_backtest(
    '{"kind": "expression", "params": {"expr": "amount > 500"}, "mode": "shadow", "action": "block"}',
    now() - interval '1 hour');
-- velocity counts the recorded history (10 per user; over 5 earlier hits)
SELECT * FROM payments.fraud_backtest(
    '{"name": "user_5_per_day", "kind": "velocity", "params": {"key": "user_id", "window": "1 day", "max_count": 5}}',
    now() - interval '1 hour');
INSERT INTO payments.fraud_lists (list_name, value) VALUES ('bad', 'U7@example.com'), ('bad', 'u8@example.com');
SELECT * FROM payments.fraud_backtest(
    '{"kind": "blocklist", "params": {"field": "email", "list": "bad"}}',
    now() - interval '1 hour');
-- nothing recorded since then
SELECT * FROM payments.fraud_backtest(
    '{"kind": "avs_cvv", "params": {}}', now() + interval '1 hour');
SELECT count(*) FROM payments.fraud_rules;

-- A bad candidate is refused like a bad rule.
SELECT * FROM payments.fraud_backtest('{"kind": "expression", "params": {"expr": "amount >>"}}', now());
SELECT * FROM payments.fraud_backtest('{"kind": "velocity", "params": {}}', now());
SELECT * FROM payments.fraud_backtest('{"params": {}}', now());
SELECT * FROM payments.fraud_backtest('[]', now());
SELECT * FROM payments.fraud_backtest('{"kind": "avs_cvv", "params": {}, "score": "high"}', now());
SELECT * FROM payments.fraud_backtest(NULL, now());

TRUNCATE payments.fraud_rules, payments.fraud_lists,
    payments.fraud_evaluations, payments.fraud_velocity;
