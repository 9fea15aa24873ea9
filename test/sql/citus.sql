-- payments.citus_distribute() on a server without Citus, and the schema
-- it relies on (test/t/130_citus.pl runs it on a Citus cluster).

-- a clear error, and nothing changed
SELECT * FROM payments.citus_distribute();
SELECT conname FROM pg_constraint
WHERE conrelid = 'payments.webhook_secrets'::regclass AND contype = 'f';

-- for the owner only
SELECT has_function_privilege('public', 'payments.citus_distribute()', 'execute') AS public_may_call;

-- every unique constraint of a table to distribute holds its distribution
-- column (Citus refuses any other): no row
SELECT d.rel, c.conname
FROM (VALUES ('payments.idempotency_keys'::regclass, 'key'),
             ('payments.webhook_inbox', 'event_id'),
             ('payments.webhook_rejections', 'id'),
             ('payments.fraud_evaluations', 'id'),
             ('payments.fraud_velocity', 'key_value'),
             ('payments.sagas', 'id'),
             ('payments.saga_events', 'saga_id'),
             ('payments.ledger', 'transaction_id'),
             ('payments.gateway_report', 'transaction_id')) AS d(rel, col)
JOIN pg_constraint c ON c.conrelid = d.rel AND c.contype IN ('p', 'u', 'x')
WHERE NOT (SELECT attnum FROM pg_attribute WHERE attrelid = d.rel AND attname = d.col)
          = ANY (c.conkey);

-- colocated tables: same type and collation of the distribution column
SELECT a.attrelid::regclass, a.attname, a.atttypid::regtype, a.attcollation::regcollation
FROM pg_attribute a
WHERE (a.attrelid, a.attname) IN (('payments.sagas'::regclass, 'id'),
                                  ('payments.saga_events'::regclass, 'saga_id'),
                                  ('payments.ledger'::regclass, 'transaction_id'),
                                  ('payments.gateway_report'::regclass, 'transaction_id'))
ORDER BY a.attrelid::regclass::text;
