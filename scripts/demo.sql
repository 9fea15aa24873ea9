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
\echo '== fraud: the shop screens each attempt before charging, in the same transaction that records it'
INSERT INTO payments.fraud_lists (list_name, value) VALUES ('blocked_emails', 'mallory@example.com');
INSERT INTO payments.fraud_rules (name, kind, params, position) VALUES
    ('blocked_email', 'blocklist', '{"field": "email", "list": "blocked_emails"}', 10),
    ('avs_cvv', 'avs_cvv', '{}', 20),
    ('three_per_hour', 'velocity', '{"key": "card_fingerprint", "window": "1 hour", "max_count": 3}', 30),
    ('big_abroad', 'expression', '{"expr": "amount > 1000 AND ip_country != billing_country"}', 40);
\echo '-- order 1001: a regular shopper'
SELECT decision, score, blocked_by FROM payments.fraud_evaluate('{"email": "alice@example.com", "card_fingerprint": "fp_alice", "amount": 20, "avs_result": "pass", "cvv_result": "pass", "ip_country": "DE", "billing_country": "DE"}');
\echo '-- a blocklisted email, whatever its case: blocked before any charge'
SELECT decision, score, blocked_by FROM payments.fraud_evaluate('{"email": "Mallory@Example.com", "card_fingerprint": "fp_m", "amount": 20}');
\echo '-- a large order from abroad goes to review; a failed AVS check is blocked'
SELECT decision, score, blocked_by FROM payments.fraud_evaluate('{"email": "bob@example.com", "card_fingerprint": "fp_bob", "amount": 1500, "ip_country": "US", "billing_country": "DE"}');
SELECT decision, score, blocked_by FROM payments.fraud_evaluate('{"email": "eve@example.com", "card_fingerprint": "fp_eve", "amount": 30, "avs_result": "fail"}');
\echo '-- the audit trail, and how a candidate rule would have decided it'
SELECT decision, blocked_by, context ->> 'email' AS email FROM payments.fraud_evaluations ORDER BY id;
SELECT * FROM payments.fraud_backtest('{"kind": "high_amount", "params": {"threshold": 1000}, "action": "block"}', now() - interval '1 hour');

\echo
\echo '== idempotency: the shopper clicks "Pay" for order 1001; the request carries Idempotency-Key order-1001'
\echo '-- started: this call owns the key; it keeps the owner token for every later call'
SELECT outcome, token FROM payments.idempotency_begin('order-1001', '{"amount": 2000, "currency": "EUR", "card": "tok_visa"}') \gset
\echo outcome :outcome, owner token :token
\echo '-- the app charges the card at the gateway and records how far it got'
SELECT payments.idempotency_checkpoint('order-1001', 'charge_created', token => :'token');
\echo '-- a double click sends the same request while the first is still running: PM002, answer 409 and retry later'
\set ON_ERROR_STOP off
SELECT outcome FROM payments.idempotency_begin('order-1001', '{"currency": "EUR", "amount": 2000, "card": "tok_visa"}');
\set ON_ERROR_STOP on
\echo '-- a request that lost its key (a forged or stale token) cannot store its answer: PM003'
\set ON_ERROR_STOP off
SELECT payments.idempotency_complete('order-1001', '{"charge": "ch_forged"}', token => '00000000-0000-4000-8000-000000000000');
\set ON_ERROR_STOP on
SELECT payments.idempotency_complete('order-1001', '{"charge": "ch_3001", "status": "succeeded"}', token => :'token');
\echo '-- the browser retries after a timeout: the stored response comes back, nothing is charged twice'
SELECT outcome, response FROM payments.idempotency_begin('order-1001', '{"amount": 2000, "currency": "EUR", "card": "tok_visa"}');
\echo '-- a buggy client reuses the key for another amount: PM001, answer 422'
\set ON_ERROR_STOP off
SELECT outcome FROM payments.idempotency_begin('order-1001', '{"amount": 9999, "currency": "EUR", "card": "tok_visa"}');
\set ON_ERROR_STOP on

\echo
\echo '== redaction: the gateway declines and the app logs what it got back, card number and all'
SELECT payments.redact('gateway: card 4111 1111 1111 1111 exp 12/27 cvv: 123 declined (order 1001, EUR 20.00)');
SELECT payments.redact('{"card": {"number": "4111111111111111", "cvc": "123"}, "amount": 2000}'::jsonb);
\echo '-- a support ticket table that scrubs whatever the shopper pastes into it'
CREATE TABLE support_tickets (id int PRIMARY KEY, subject varchar(40), body text);
CREATE TRIGGER support_tickets_redact BEFORE INSERT OR UPDATE ON support_tickets
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger();
INSERT INTO support_tickets VALUES (1, 'card 5555-5555-5555-4444 charged twice?', 'my card is 5555555555554444, cvc 737');
SELECT * FROM support_tickets;
\echo '-- a unique violation echoes the card number in its DETAIL; the server log gets it masked'
CREATE TABLE declined_cards (note text UNIQUE);
INSERT INTO declined_cards VALUES ('card 4111111111111111');
\set ON_ERROR_STOP off
INSERT INTO declined_cards VALUES ('card 4111111111111111');
\set ON_ERROR_STOP on
SELECT line AS server_log FROM regexp_split_to_table(pg_read_file(:'logfile'), E'\n') AS line
WHERE line ~ 'declined_cards|Key \(note\)';

\echo
\echo '== webhooks: a signed Stripe delivery is stored once; a forged one is refused'
INSERT INTO payments.webhook_endpoints (name, scheme) VALUES ('stripe', 'stripe');
INSERT INTO payments.webhook_secrets (endpoint, secret) VALUES ('stripe', 'whsec_demo_5f2b7c9e');
-- Stripe's side: sign "<t>.<body>" with the endpoint's secret (here with pgcrypto's hmac()).
CREATE EXTENSION IF NOT EXISTS pgcrypto;
\set body '{"id": "evt_demo_1", "type": "payment_intent.succeeded", "data": {"object": {"amount": 2000}}}'
SELECT extract(epoch FROM now())::bigint AS t \gset
SELECT jsonb_build_object('Stripe-Signature', 't=' || :t || ',v1=' ||
       encode(hmac(convert_to(:'t' || '.' || :'body', 'UTF8'), 'whsec_demo_5f2b7c9e'::bytea, 'sha256'), 'hex'))
       AS headers \gset
-- Our side: verify, deduplicate on the event id, store in the caller's transaction.
SELECT * FROM payments.webhook_receive('stripe', :'headers', convert_to(:'body', 'UTF8'));
SELECT * FROM payments.webhook_receive('stripe', :'headers', convert_to(:'body', 'UTF8'));
SELECT * FROM payments.webhook_receive('stripe', :'headers', convert_to(replace(:'body', '2000', '1'), 'UTF8'));
SELECT id, endpoint, event_id, received_at FROM payments.webhook_inbox;
SELECT endpoint, reason, encode(body_sha256, 'hex') AS body_sha256 FROM payments.webhook_rejections;

\echo
\echo '== reconciliation: next morning, the ledger against the gateway''s settlement report'
INSERT INTO payments.status_map VALUES ('captured', 'succeeded');
INSERT INTO payments.ledger VALUES
    ('order-1001', 20.00, 'EUR', 'captured', now() - interval '1 hour'),
    ('order-1002', 35.00, 'EUR', 'captured', now() - interval '50 minutes');
INSERT INTO payments.gateway_report VALUES
    ('order-1001', 20.00, 'EUR', 'succeeded', now() - interval '1 hour'),
    ('order-1003', 12.50, 'EUR', 'succeeded', now() - interval '40 minutes');
SELECT payments.reconcile(now() - interval '1 day', now()) AS run_id \gset
SELECT summary FROM payments.reconciliation_runs WHERE id = :run_id;
SELECT transaction_id, kind, internal_amount, gateway_amount
FROM payments.reconciliation_discrepancies WHERE run_id = :run_id ORDER BY seq;
\echo '-- the background worker does this every night for the previous day'
SELECT state, next_run_at FROM payments.worker_status;

\echo
\echo '== observability: counters since server start'
SELECT name, value FROM payments.stats ORDER BY name;
