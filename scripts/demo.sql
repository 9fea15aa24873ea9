-- scripts/demo.sql: a shop's checkout through every module of payments, run
-- by scripts/demo on a throwaway cluster with the library preloaded.
--
-- The schema shop stands in for the application and its payment gateway:
-- plain tables and PL/pgSQL functions.  payments does the hard parts.
--
--   1. a checkout saga whose payment step survives two gateway outages
--   2. the same payment request replayed: the stored charge, no second one
--   3. a shipment that fails after capture: compensated in reverse order
--   4. a blocklisted email stopped by fraud screening before any charge
--   5. a signed webhook accepted, its redelivery deduplicated, a forgery refused
--   6. next morning's reconciliation of the ledger against the gateway
--   7. a support note with a card number: stored and logged only masked
--
-- Each scenario ends with a verdict: shop.verdict compares what happened
-- with what must happen and raises 'demo scenario N: expected X, got Y'
-- otherwise, which stops psql (ON_ERROR_STOP) and fails scripts/demo.
-- Statements are echoed, except the shop's code below (read it here).

\set VERBOSITY default
\pset footer off
\echo
\echo '== payments demo: a shop''s checkout, every module'
CREATE EXTENSION payments;
CREATE EXTENSION pgcrypto;  -- only to sign webhooks as the provider would

\echo
\echo '== the shop: a catalogue, three orders, a simulated gateway, the checkout (see scripts/demo.sql)'
\set ECHO none

CREATE SCHEMA shop;

CREATE TABLE shop.products (
    sku   text PRIMARY KEY,
    price numeric(10,2) NOT NULL,
    stock integer NOT NULL CHECK (stock >= 0)
);
INSERT INTO shop.products VALUES ('mug', 12.50, 10), ('teapot', 39.90, 3);

CREATE TABLE shop.orders (
    id      integer PRIMARY KEY,
    email   text NOT NULL,
    sku     text NOT NULL REFERENCES shop.products,
    qty     integer NOT NULL,
    amount  numeric(10,2) NOT NULL,
    currency text NOT NULL,
    card    text NOT NULL,   -- the gateway's token for the card, never its number
    ship_to text NOT NULL    -- country
);
INSERT INTO shop.orders VALUES
    (1001, 'alice@example.com',   'mug',    2, 25.00, 'EUR', 'tok_visa_4242', 'DE'),
    (1002, 'bob@example.com',     'teapot', 1, 39.90, 'EUR', 'tok_mc_4444',   'AQ'),  -- Antarctica
    (1003, 'Mallory@Example.com', 'teapot', 1, 39.90, 'EUR', 'tok_visa_1881', 'FR');

CREATE TABLE shop.reservations (
    order_id integer PRIMARY KEY REFERENCES shop.orders,
    released boolean NOT NULL DEFAULT false
);
CREATE TABLE shop.shipments (
    order_id integer PRIMARY KEY REFERENCES shop.orders,
    tracking text NOT NULL
);

-- Support notes: whatever a shopper pastes in is scrubbed as the row
-- arrives (every text column, INSERT, UPDATE and COPY).
CREATE TABLE shop.support_notes (
    id       serial PRIMARY KEY,
    order_id integer NOT NULL REFERENCES shop.orders,
    note     text NOT NULL
);
CREATE TRIGGER support_notes_redact BEFORE INSERT OR UPDATE ON shop.support_notes
    FOR EACH ROW EXECUTE FUNCTION payments.redact_trigger();

-- The payment gateway, simulated.  Like Stripe it dedupes on the caller's
-- idempotency key.  shop.gateway_outages makes its next N calls fail (503).
CREATE SEQUENCE shop.charge_ids;
CREATE SEQUENCE shop.refund_ids;
CREATE TABLE shop.charges (
    id              text PRIMARY KEY DEFAULT 'ch_' || nextval('shop.charge_ids'),
    idempotency_key text NOT NULL UNIQUE,
    order_id        integer NOT NULL,
    amount          numeric(10,2) NOT NULL,
    currency        text NOT NULL,
    status          text NOT NULL DEFAULT 'authorized',  -- captured, voided, refunded
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE shop.refunds (
    id              text PRIMARY KEY DEFAULT 're_' || nextval('shop.refund_ids'),
    idempotency_key text NOT NULL UNIQUE,
    charge_id       text NOT NULL REFERENCES shop.charges,
    amount          numeric(10,2) NOT NULL
);
CREATE TABLE shop.gateway_outages (calls_left integer NOT NULL);
INSERT INTO shop.gateway_outages VALUES (0);

CREATE FUNCTION shop.gateway_down() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE shop.gateway_outages SET calls_left = calls_left - 1 WHERE calls_left > 0;
    RETURN FOUND;
END $$;

CREATE FUNCTION shop.gateway_authorize(idem_key text, req jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF shop.gateway_down() THEN
        RETURN '{"error": "gateway_unavailable", "http_status": 503}';
    END IF;
    INSERT INTO shop.charges (idempotency_key, order_id, amount, currency)
    VALUES (idem_key, (req ->> 'order')::integer, (req ->> 'amount')::numeric, req ->> 'currency')
    ON CONFLICT (idempotency_key) DO NOTHING;
    RETURN (SELECT jsonb_build_object('charge', id, 'status', status, 'amount', amount)
            FROM shop.charges WHERE idempotency_key = idem_key);
END $$;

CREATE FUNCTION shop.gateway_capture(charge text) RETURNS jsonb LANGUAGE sql AS $$
    UPDATE shop.charges SET status = 'captured' WHERE id = charge AND status = 'authorized'
    RETURNING jsonb_build_object('charge', id, 'status', status)
$$;

CREATE FUNCTION shop.gateway_refund(idem_key text, charge text) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO shop.refunds (idempotency_key, charge_id, amount)
    SELECT idem_key, id, amount FROM shop.charges WHERE id = charge AND status = 'captured'
    ON CONFLICT (idempotency_key) DO NOTHING;
    UPDATE shop.charges SET status = 'refunded' WHERE id = charge AND status = 'captured';
    RETURN (SELECT jsonb_build_object('refund', id, 'charge', charge_id, 'amount', amount)
            FROM shop.refunds WHERE idempotency_key = idem_key);
END $$;

-- Releases an authorization's hold; a refunded charge holds nothing any more.
CREATE FUNCTION shop.gateway_void(charge text) RETURNS jsonb LANGUAGE sql AS $$
    UPDATE shop.charges SET status = CASE status WHEN 'authorized' THEN 'voided' ELSE status END
    WHERE id = charge
    RETURNING jsonb_build_object('charge', id, 'status', status, 'voided', status = 'voided')
$$;

-- The shop's payment call.  The idempotency key makes it safe to repeat:
-- a request already answered gets the stored answer, and the gateway is
-- called at most once per key.
CREATE FUNCTION shop.pay(idem_key text, req jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    claim  record;
    answer jsonb;
BEGIN
    SELECT outcome, response, error, token INTO claim
    FROM payments.idempotency_begin(idem_key, req);
    IF claim.outcome = 'completed' THEN
        RETURN claim.response;      -- a replay: no second call to the gateway
    ELSIF claim.outcome = 'failed' THEN
        RETURN claim.error;
    END IF;
    -- started (or resumed after a crash): this call owns the key
    answer := shop.gateway_authorize(idem_key, req);
    IF answer ? 'error' THEN        -- transient: free the key, try again later
        PERFORM payments.idempotency_fail(idem_key, answer, true, token => claim.token);
        RETURN answer || '{"retriable": true}';
    END IF;
    PERFORM payments.idempotency_complete(idem_key, answer, token => claim.token);
    RETURN answer;
END $$;

CREATE FUNCTION shop.payment_request(o shop.orders) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('order', o.id, 'amount', o.amount, 'currency', o.currency, 'card', o.card)
$$;

-- The checkout's steps.  Each returns what it did as jsonb; a key "error"
-- means it failed ("retriable": true: try the step again).
CREATE FUNCTION shop.reserve_inventory(o shop.orders) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    UPDATE shop.products SET stock = stock - o.qty WHERE sku = o.sku AND stock >= o.qty;
    IF NOT FOUND THEN
        RETURN '{"error": "out_of_stock"}';
    END IF;
    INSERT INTO shop.reservations VALUES (o.id);
    RETURN jsonb_build_object('reserved', o.qty, 'sku', o.sku);
END $$;

CREATE FUNCTION shop.release_inventory(o shop.orders) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    UPDATE shop.reservations SET released = true WHERE order_id = o.id AND NOT released;
    IF FOUND THEN
        UPDATE shop.products SET stock = stock + o.qty WHERE sku = o.sku;
    END IF;
    RETURN jsonb_build_object('released', o.qty, 'sku', o.sku);
END $$;

CREATE FUNCTION shop.fraud_check(o shop.orders) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    f record;
BEGIN
    SELECT decision, blocked_by, evaluation_id INTO f
    FROM payments.fraud_evaluate(jsonb_build_object(
        'email', o.email, 'amount', o.amount, 'currency', o.currency,
        'card_fingerprint', o.card, 'avs_result', 'pass', 'cvv_result', 'pass'));
    IF f.decision <> 'approve' THEN
        RETURN jsonb_build_object('error', 'fraud_' || f.decision, 'rule', f.blocked_by,
                                  'evaluation', f.evaluation_id);
    END IF;
    RETURN jsonb_build_object('decision', f.decision, 'evaluation', f.evaluation_id);
END $$;

-- Capture books the money in the ledger that reconciliation reads.
CREATE FUNCTION shop.capture(o shop.orders) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    c shop.charges;
BEGIN
    SELECT * INTO c FROM shop.charges WHERE order_id = o.id AND status = 'authorized';
    INSERT INTO payments.ledger VALUES (c.id, c.amount, c.currency, 'captured', now());
    RETURN shop.gateway_capture(c.id);
END $$;

CREATE FUNCTION shop.refund(o shop.orders, idem_key text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    c shop.charges;
BEGIN
    SELECT * INTO c FROM shop.charges WHERE order_id = o.id;
    UPDATE payments.ledger SET status = 'refunded' WHERE transaction_id = c.id;
    RETURN shop.gateway_refund(idem_key, c.id);
END $$;

CREATE FUNCTION shop.ship(o shop.orders) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF o.ship_to NOT IN ('DE', 'FR', 'NL') THEN   -- where the carrier delivers
        RETURN jsonb_build_object('error', 'no_carrier_to_' || o.ship_to);
    END IF;
    INSERT INTO shop.shipments VALUES (o.id, 'PKG-' || o.id);
    RETURN jsonb_build_object('tracking', 'PKG-' || o.id);
END $$;

-- The orchestrator: a saga per order, id 'order-<id>'.  It asks saga_next,
-- runs or compensates that step, records the outcome with saga_record, and
-- commits.  (The gateway here is a table, so a step and its record commit
-- together.  With a real gateway the call is made outside any transaction
-- and saga_record follows in its own: after a crash in between, saga_next
-- gives the same attempt, hence the same key, and the gateway answers with
-- its first result.)
CREATE PROCEDURE shop.checkout(order_id integer) LANGUAGE plpgsql AS $$
DECLARE
    o      shop.orders;
    saga   text := 'order-' || order_id;
    nxt    record;
    result jsonb;
    n      integer := 0;
BEGIN
    SELECT * INTO STRICT o FROM shop.orders WHERE id = order_id;
    PERFORM payments.saga_start('checkout', '[
        {"name": "reserve_inventory", "compensable": true},
        {"name": "fraud_check",       "compensable": false},
        {"name": "authorize",         "compensable": true},
        {"name": "capture",           "compensable": true},
        {"name": "ship",              "compensable": false}]',
        jsonb_build_object('order', order_id), saga);
    COMMIT;
    LOOP
        SELECT * INTO nxt FROM payments.saga_next(saga);
        EXIT WHEN nxt.action = 'done';
        n := n + 1;
        IF n > 20 THEN
            RAISE EXCEPTION 'saga % does not finish', saga;
        END IF;
        CASE nxt.action || ' ' || nxt.step
            WHEN 'run reserve_inventory' THEN result := shop.reserve_inventory(o);
            WHEN 'run fraud_check'       THEN result := shop.fraud_check(o);
            WHEN 'run authorize'         THEN   -- the gateway sees one key per attempt
                result := shop.pay(payments.saga_step_key(saga, nxt.step, nxt.attempt),
                                   shop.payment_request(o));
            WHEN 'run capture'           THEN result := shop.capture(o);
            WHEN 'run ship'              THEN result := shop.ship(o);
            WHEN 'compensate capture'    THEN   -- refund
                result := shop.refund(o, payments.saga_step_key(saga, nxt.step, nxt.attempt, 'compensate'));
            WHEN 'compensate authorize'  THEN   -- release the hold
                result := shop.gateway_void((SELECT id FROM shop.charges WHERE charges.order_id = o.id));
            WHEN 'compensate reserve_inventory' THEN result := shop.release_inventory(o);
        END CASE;
        PERFORM payments.saga_record(saga, nxt.step,
            CASE WHEN result ? 'error' THEN 'failed' ELSE 'succeeded' END, result);
        COMMIT;
    END LOOP;
END $$;

-- One line per order: where its saga, money, stock and parcel are.
CREATE VIEW shop.order_status AS
SELECT o.id AS order_id,
       s.state AS saga,
       (SELECT count(*) FROM shop.charges c WHERE c.order_id = o.id) AS charges,
       (SELECT string_agg(c.status, ',') FROM shop.charges c WHERE c.order_id = o.id) AS charge_status,
       (SELECT count(*) FROM shop.refunds r JOIN shop.charges c ON c.id = r.charge_id
        WHERE c.order_id = o.id) AS refunds,
       (SELECT CASE WHEN r.released THEN 'released' ELSE 'reserved' END
        FROM shop.reservations r WHERE r.order_id = o.id) AS items,
       (SELECT tracking FROM shop.shipments p WHERE p.order_id = o.id) AS shipment
FROM shop.orders o LEFT JOIN payments.sagas s ON s.id = 'order-' || o.id;

-- The checks: a wrong outcome stops the demo with both values.
CREATE FUNCTION shop.verdict(scenario integer, summary text, got jsonb, expected jsonb)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF got IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'demo scenario %: expected %, got %', scenario, expected, got;
    END IF;
    RETURN format('scenario %s OK: %s', scenario, summary);
END $$;

-- The SQLSTATE a statement fails with (NULL when it succeeds).
CREATE FUNCTION shop.sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

\set ECHO queries
SELECT * FROM shop.products ORDER BY sku;
SELECT id, email, sku, qty, amount, currency, ship_to FROM shop.orders ORDER BY id;

\echo
\echo '== what the shop configures in payments, as the extension''s owner'
INSERT INTO payments.fraud_lists (list_name, value) VALUES ('blocked_emails', 'mallory@example.com');
INSERT INTO payments.fraud_rules (name, kind, params, position) VALUES
    ('blocked_email', 'blocklist', '{"field": "email", "list": "blocked_emails"}', 10),
    ('avs_cvv', 'avs_cvv', '{}', 20),
    ('three_per_hour', 'velocity', '{"key": "card_fingerprint", "window": "1 hour", "max_count": 3}', 30);
INSERT INTO payments.webhook_endpoints (name, scheme) VALUES ('stripe', 'stripe');
SELECT payments.webhook_secret_add('stripe', 'whsec_demo_5f2b7c9e');
INSERT INTO payments.status_map VALUES ('captured', 'succeeded'), ('refunded', 'refunded');

\echo
\echo '== 1. order 1001: the checkout saga; the gateway is down for the first two payment attempts'
\echo '-- shop.checkout runs the steps reserve_inventory, fraud_check, authorize, capture, ship as'
\echo '-- payments.saga_next says, and records each outcome with payments.saga_record'
UPDATE shop.gateway_outages SET calls_left = 2;
CALL shop.checkout(1001);
SELECT event, step, attempt, to_state, detail FROM payments.saga_events
WHERE saga_id = 'order-1001' ORDER BY id;
\echo '-- each attempt had its own idempotency key (saga_step_key); the gateway charged once'
SELECT id, idempotency_key, amount, status FROM shop.charges WHERE order_id = 1001;
SELECT * FROM shop.order_status WHERE order_id = 1001;
SELECT shop.verdict(1, 'completed after two retried payment attempts, one charge, shipped',
    (SELECT to_jsonb(s) || jsonb_build_object(
         'charge_key', (SELECT idempotency_key FROM shop.charges WHERE order_id = 1001),
         'mugs_left', (SELECT stock FROM shop.products WHERE sku = 'mug'))
     FROM shop.order_status s WHERE order_id = 1001),
    jsonb_build_object('order_id', 1001, 'saga', 'completed', 'charges', 1,
        'charge_status', 'captured', 'refunds', 0, 'items', 'reserved', 'shipment', 'PKG-1001',
        'charge_key', payments.saga_step_key('order-1001', 'authorize', 3), 'mugs_left', 8)) AS verdict;

\echo
\echo '== 2. the shopper''s browser re-sends the payment request: same idempotency key, same body'
SELECT idempotency_key AS key, shop.payment_request(o) AS request
FROM shop.charges JOIN shop.orders o ON o.id = order_id WHERE order_id = 1001 \gset
SELECT outcome, response FROM payments.idempotency_begin(:'key', :'request') \gset replay_
\echo idempotency_begin: :replay_outcome, the stored response :replay_response
\echo '-- the shop''s payment call answers the same, and does not call the gateway'
SELECT shop.pay(:'key', :'request') AS answer \gset
\echo shop.pay: :answer
\echo '-- a buggy client reuses the key for another amount: PM001, answer 422'
SELECT shop.sqlstate_of(format('SELECT payments.idempotency_begin(%L, %L)',
    :'key', jsonb_set(:'request', '{amount}', '99.00'))) AS other_amount \gset
\echo same key, amount 99.00: :other_amount
SELECT count(*) AS charges_for_1001 FROM shop.charges WHERE order_id = 1001;
SELECT shop.verdict(2, 'the replay got the stored charge; the gateway was not called again',
    jsonb_build_object('replay', :'replay_outcome', 'response', :'replay_response'::jsonb,
        'answer', :'answer'::jsonb, 'other_amount', :'other_amount',
        'charges', (SELECT count(*) FROM shop.charges WHERE order_id = 1001)),
    (SELECT jsonb_build_object('replay', 'completed', 'response', r, 'answer', r,
         'other_amount', 'PM001', 'charges', 1)
     FROM (SELECT jsonb_build_object('charge', id, 'status', 'authorized', 'amount', amount) AS r
           FROM shop.charges WHERE order_id = 1001) AS stored)) AS verdict;

\echo
\echo '== 3. order 1002: authorized and captured, then the carrier cannot deliver'
CALL shop.checkout(1002);
SELECT event, step, attempt, to_state, detail FROM payments.saga_events
WHERE saga_id = 'order-1002' ORDER BY id;
SELECT * FROM shop.order_status WHERE order_id = 1002;
SELECT shop.verdict(3, 'compensated in reverse order: refund, authorization (nothing left to hold), teapot back in stock',
    (SELECT to_jsonb(s) FROM shop.order_status s WHERE order_id = 1002) || jsonb_build_object(
        'compensations', (SELECT jsonb_agg(step ORDER BY id) FROM payments.saga_events
                          WHERE saga_id = 'order-1002' AND event = 'compensation_succeeded'),
        'ledger', (SELECT l.status FROM payments.ledger l JOIN shop.charges c ON c.id = l.transaction_id
                   WHERE c.order_id = 1002),
        'teapots', (SELECT stock FROM shop.products WHERE sku = 'teapot')),
    '{"order_id": 1002, "saga": "compensated", "charges": 1, "charge_status": "refunded",
      "refunds": 1, "items": "released", "shipment": null,
      "compensations": ["capture", "authorize", "reserve_inventory"],
      "ledger": "refunded", "teapots": 3}') AS verdict;

\echo
\echo '== 4. order 1003: a blocklisted email, whatever its case, stopped before any charge'
CALL shop.checkout(1003);
SELECT event, step, attempt, to_state, detail FROM payments.saga_events
WHERE saga_id = 'order-1003' ORDER BY id;
\echo '-- the fraud audit trail: every evaluation and its decision'
SELECT id, decision, blocked_by, context ->> 'email' AS email FROM payments.fraud_evaluations ORDER BY id;
SELECT * FROM shop.order_status WHERE order_id = 1003;
SELECT shop.verdict(4, 'blocked by fraud screening, no charge, reservation released',
    (SELECT to_jsonb(s) FROM shop.order_status s WHERE order_id = 1003) || jsonb_build_object(
        'fraud', (SELECT decision || ' by ' || blocked_by FROM payments.fraud_evaluations
                  WHERE context ->> 'email' = 'Mallory@Example.com'),
        'compensations', (SELECT jsonb_agg(step ORDER BY id) FROM payments.saga_events
                          WHERE saga_id = 'order-1003' AND event = 'compensation_succeeded'),
        'teapots', (SELECT stock FROM shop.products WHERE sku = 'teapot')),
    '{"order_id": 1003, "saga": "compensated", "charges": 0, "charge_status": null,
      "refunds": 0, "items": "released", "shipment": null,
      "fraud": "block by blocked_email", "compensations": ["reserve_inventory"], "teapots": 3}') AS verdict;

\echo
\echo '== 5. webhooks: the gateway confirms order 1001''s capture; a redelivery and a forgery follow'
\echo '-- the gateway signs "<t>.<body>" with the endpoint''s secret (here with pgcrypto''s hmac)'
SELECT format('{"id": "evt_1001", "type": "charge.captured", "data": {"object": {"id": "%s", "amount": 2500}}}', id) AS body
FROM shop.charges WHERE order_id = 1001 \gset
SELECT extract(epoch FROM now())::bigint AS t \gset
SELECT jsonb_build_object('Stripe-Signature', 't=' || :t || ',v1=' ||
       encode(hmac(convert_to(:'t' || '.' || :'body', 'UTF8'), 'whsec_demo_5f2b7c9e'::bytea, 'sha256'), 'hex'))
       AS headers \gset
\echo '-- the shop verifies, deduplicates on the event id and stores: the delivery, again, then tampered'
SELECT * FROM payments.webhook_receive('stripe', :'headers', convert_to(:'body', 'UTF8'));
SELECT * FROM payments.webhook_receive('stripe', :'headers', convert_to(:'body', 'UTF8'));
SELECT * FROM payments.webhook_receive('stripe', :'headers', convert_to(replace(:'body', '2500', '1'), 'UTF8'));
SELECT id, endpoint, event_id, convert_from(body, 'UTF8')::jsonb ->> 'type' AS type FROM payments.webhook_inbox;
SELECT endpoint, reason FROM payments.webhook_rejections;
SELECT shop.verdict(5, 'stored once; the redelivery was a duplicate, the forgery rejected',
    jsonb_build_object(
        'inbox', (SELECT jsonb_agg(event_id) FROM payments.webhook_inbox),
        'rejections', (SELECT jsonb_agg(reason) FROM payments.webhook_rejections),
        'duplicates', (SELECT value FROM payments.stats WHERE name = 'webhook_duplicate')),
    '{"inbox": ["evt_1001"], "rejections": ["no_matching_signature"], "duplicates": 1}') AS verdict;

\echo
\echo '== 6. next morning: the ledger against the gateway''s settlement report'
\echo '-- the shop''s capture and refund steps wrote payments.ledger; the gateway''s report is loaded'
INSERT INTO payments.gateway_report
SELECT id, amount, currency, CASE status WHEN 'captured' THEN 'succeeded' ELSE status END, created_at
FROM shop.charges WHERE status IN ('captured', 'refunded');
\echo '-- drift: a dispute the shop has not heard of, a sale keyed into the gateway''s dashboard,'
\echo '-- a booking the gateway never saw'
UPDATE payments.gateway_report SET status = 'disputed'
WHERE transaction_id = (SELECT id FROM shop.charges WHERE order_id = 1001);
INSERT INTO payments.gateway_report VALUES ('ch_phone_77', 18.00, 'EUR', 'succeeded', now() - interval '2 hours');
INSERT INTO payments.ledger VALUES ('ch_manual_12', 42.00, 'EUR', 'captured', now() - interval '3 hours');
SELECT payments.reconcile(now() - interval '1 day', now()) AS run_id \gset
SELECT summary FROM payments.reconciliation_runs WHERE id = :run_id;
SELECT transaction_id, kind, internal_amount, internal_status, gateway_amount, gateway_status
FROM payments.reconciliation_discrepancies WHERE run_id = :run_id ORDER BY seq;
SELECT shop.verdict(6, 'one missing_internal, one missing_gateway, one status_mismatch; the refund matched',
    (SELECT jsonb_build_object('matched', matched, 'transactions', transactions,
         'found', (SELECT jsonb_object_agg(transaction_id, kind)
                   FROM payments.reconciliation_discrepancies WHERE run_id = :run_id))
     FROM payments.reconciliation_runs WHERE id = :run_id),
    jsonb_build_object('matched', 1, 'transactions', 4, 'found', jsonb_build_object(
        'ch_phone_77', 'missing_internal', 'ch_manual_12', 'missing_gateway',
        (SELECT id FROM shop.charges WHERE order_id = 1001), 'status_mismatch'))) AS verdict;
\echo '-- the background worker runs this every night for the previous day'
SELECT state, current_setting('payments.reconcile_time') AS reconciles_at FROM payments.worker_status;

\echo
\echo '== 7. support: bob pastes his card into a note; the app logs the note'
\echo '-- the app stores the note (the table''s redact_trigger scrubs it) and logs what it got'
CREATE FUNCTION shop.add_note(order_id integer, note text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    stored text;
BEGIN
    INSERT INTO shop.support_notes (order_id, note) VALUES (order_id, note) RETURNING support_notes.note INTO stored;
    RAISE LOG 'support note for order %: %', order_id, note;
    RETURN stored;
END $$;
SELECT shop.add_note(1002, 'Refund to my card 4111 1111 1111 1111 please, cvc 737') AS stored;
\echo '-- the server log: the message and the statement, both masked'
SELECT line AS server_log FROM regexp_split_to_table(pg_read_file(:'logfile'), E'\n') AS line
WHERE line ~ 'support note|add_note';
SELECT shop.verdict(7, 'the card number and CVV are masked in the table and in the log',
    jsonb_build_object(
        'stored', (SELECT note FROM shop.support_notes),
        'log_lines', (SELECT count(*) FROM regexp_split_to_table(pg_read_file(:'logfile'), E'\n') AS line
                      WHERE line ~ 'support note|add_note' AND line ~ '\*{12}1111' AND line ~ 'cvc \[REDACTED_CVV\]'),
        'log_has_card', pg_read_file(:'logfile') ~ '4111 ?1111 ?1111 ?1111|cvc 737'),
    '{"stored": "Refund to my card ************1111 please, cvc [REDACTED_CVV]",
      "log_lines": 2, "log_has_card": false}') AS verdict;

\echo
\echo '== for reference: the error catalog and the counters since server start'
SELECT sqlstate, name, retriable, http_status FROM payments.error_codes ORDER BY sqlstate;
SELECT name, value FROM payments.stats WHERE value > 0 ORDER BY name;
