-- webhook_receive: endpoints and secrets, the deduplicating inbox,
-- rejections, counters, privileges and webhook_purge.

CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Counters before, to compare deltas at the end.
CREATE TEMP TABLE stats_before AS
SELECT name, value FROM payments.stats WHERE name LIKE 'webhook%';

INSERT INTO payments.webhook_endpoints (name, scheme) VALUES
    ('gh', 'github'), ('std', 'standard'), ('stripe', 'stripe'), ('shop', 'shopify');
INSERT INTO payments.webhook_secrets (endpoint, secret) VALUES
    ('gh', 'It''s a Secret to Everybody'),
    ('std', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');

-- GitHub's published example: accepted, then the same delivery again is a
-- duplicate pointing at the same inbox row.
SELECT status, inbox_id IS NOT NULL AS has_inbox_id, event_id, reason
FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "delivery-1", "X-GitHub-Event": "ping"}',
    'Hello, World!'::bytea);
SELECT status, inbox_id = (SELECT id FROM payments.webhook_inbox WHERE event_id = 'delivery-1') AS same_row,
       event_id, reason
FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "delivery-1", "X-GitHub-Event": "ping"}',
    'Hello, World!'::bytea);

-- The inbox keeps the body as received and the headers without the
-- signature header.
SELECT endpoint, event_id, headers, convert_from(body, 'UTF8') AS body
FROM payments.webhook_inbox ORDER BY id;

-- A forged delivery is rejected and recorded with its reason and the
-- body's SHA-256; the rejections table has no column for the body.
SELECT status, inbox_id, event_id, reason
FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "delivery-forged"}',
    'Hello, World?'::bytea);
SELECT endpoint, reason, body_sha256 = sha256('Hello, World?'::bytea) AS digest_of_body
FROM payments.webhook_rejections ORDER BY id;
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'payments' AND table_name = 'webhook_rejections' ORDER BY ordinal_position;

-- Without X-GitHub-Delivery the body's SHA-256 is the event id, so the same
-- body again is a duplicate.
SELECT status, event_id = 'sha256:' || encode(sha256('Hello, World!'::bytea), 'hex') AS body_digest_id, reason
FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}',
    'Hello, World!'::bytea);
SELECT status, reason
FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}',
    'Hello, World!'::bytea);

-- A delivery whose transaction rolls back is not remembered: the next one
-- is accepted.  Rejections roll back with the caller too.
BEGIN;
SELECT status, event_id FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "delivery-2"}',
    'Hello, World!'::bytea);
SELECT status FROM payments.webhook_receive('gh', '{}', 'Hello, World!'::bytea);
ROLLBACK;
SELECT status, event_id FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "delivery-2"}',
    'Hello, World!'::bytea);
SELECT count(*) AS rejections FROM payments.webhook_rejections;

-- Standard Webhooks' published example at its own time: the message id is
-- the event id; a redelivery within the tolerance is a duplicate; one
-- outside it is rejected, though authentic (so its id is shown).
SELECT status, event_id, reason FROM payments.webhook_receive('std',
    '{"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
      "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}',
    convert_to('{"test": 2432232314}', 'UTF8'), to_timestamp(1614265330));
SELECT status, event_id, reason FROM payments.webhook_receive('std',
    '{"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
      "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}',
    convert_to('{"test": 2432232314}', 'UTF8'), to_timestamp(1614265330 + 300));
SELECT status, event_id, reason FROM payments.webhook_receive('std',
    '{"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
      "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}',
    convert_to('{"test": 2432232314}', 'UTF8'), to_timestamp(1614265330 + 301));
-- The endpoint's tolerance is the one used.
UPDATE payments.webhook_endpoints SET tolerance = '10 minutes' WHERE name = 'std';
SELECT status, reason FROM payments.webhook_receive('std',
    '{"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
      "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}',
    convert_to('{"test": 2432232314}', 'UTF8'), to_timestamp(1614265330 + 301));

-- Rotation: the old Stripe secret expired at the delivery's time, a new one
-- is live; a delivery signed with the old one is refused, with the new one
-- accepted (the event id is the body's "id").
INSERT INTO payments.webhook_secrets (endpoint, secret, expires_at) VALUES
    ('stripe', 'whsec_old_rotated_away', to_timestamp(1700000000)),
    ('stripe', 'whsec_new_current', NULL);
SELECT status, event_id, reason FROM payments.webhook_receive('stripe',
    '{"Stripe-Signature": "t=1700000000,v1=4aa955f61261267c41f59c0f4cc4bfe5f98c92737c63c5d25211561c4cdbd807"}',
    convert_to('{"id": "evt_receive_1", "object": "event", "type": "checkout.session.completed"}', 'UTF8'),
    to_timestamp(1700000000));
SELECT status, event_id, reason FROM payments.webhook_receive('stripe',
    '{"Stripe-Signature": "t=1700000000,v1=bcc088cb7e184cf1e0a50774111d23d3cefd60aab1a029c3baf455c7a7625ad7"}',
    convert_to('{"id": "evt_receive_1", "object": "event", "type": "checkout.session.completed"}', 'UTF8'),
    to_timestamp(1700000000));
-- One second earlier the old secret was still live.
SELECT status, event_id, reason FROM payments.webhook_receive('stripe',
    '{"Stripe-Signature": "t=1700000000,v1=4aa955f61261267c41f59c0f4cc4bfe5f98c92737c63c5d25211561c4cdbd807"}',
    convert_to('{"id": "evt_receive_1", "object": "event", "type": "checkout.session.completed"}', 'UTF8'),
    to_timestamp(1700000000 - 1));

-- An endpoint without a live secret rejects everything; an unknown
-- endpoint is an error PM010; NULL arguments are 22023.
SELECT status, reason FROM payments.webhook_receive('shop',
    '{"X-Shopify-Hmac-Sha256": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}', '\x'::bytea);
SELECT pg_temp.try($$SELECT * FROM payments.webhook_receive('nope', '{}', '\x')$$);
-- a huge endpoint name is not echoed back whole: 64 bytes, then "..."
SELECT length(pg_temp.try(format($$SELECT * FROM payments.webhook_receive(%L, '{}', '\x')$$,
                                 repeat('é', 5000000)))) AS message_length;
SELECT sqlstate, name, retriable, http_status FROM payments.error_codes WHERE sqlstate = 'PM010';
SELECT pg_temp.try($$SELECT * FROM payments.webhook_receive(NULL, '{}', '\x')$$);
SELECT pg_temp.try($$SELECT * FROM payments.webhook_receive('gh', '{}', '\x', NULL)$$);

-- Counters moved by what happened above (committed or not).
SELECT s.name, s.value - COALESCE(b.value, 0) AS delta
FROM payments.stats s LEFT JOIN stats_before b USING (name)
WHERE s.name LIKE 'webhook%' ORDER BY s.name;

-- Privileges: an application role may receive and verify but may not read
-- secrets, endpoints or the inbox, nor purge.
CREATE ROLE payments_webhook_app;
SET ROLE payments_webhook_app;
SELECT pg_temp.try($$SELECT * FROM payments.webhook_secrets$$);
SELECT pg_temp.try($$SELECT * FROM payments.webhook_endpoints$$);
SELECT pg_temp.try($$SELECT * FROM payments.webhook_inbox$$);
SELECT pg_temp.try($$INSERT INTO payments.webhook_secrets (endpoint, secret) VALUES ('gh', 'mine')$$);
SELECT pg_temp.try($$SELECT payments.webhook_purge(now())$$);
SELECT status, reason FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "delivery-app"}',
    'Hello, World!'::bytea);
SELECT valid, reason FROM payments.webhook_verify('github', ARRAY['It''s a Secret to Everybody'],
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}',
    'Hello, World!'::bytea);
-- ... and may not move the clock: an expired secret revived two hours
-- back, a delivery signed ten days ahead, one received in 2001 to be
-- purged at once and accepted again; now() itself is allowed
SELECT pg_temp.try($$SELECT * FROM payments.webhook_receive('gh', '{}', '\x', now() - interval '2 hours')$$);
SELECT pg_temp.try($$SELECT * FROM payments.webhook_receive('gh', '{}', '\x', now() + interval '10 days')$$);
SELECT pg_temp.try($$SELECT * FROM payments.webhook_receive('gh', '{}', '\x', '2001-01-01')$$);
SELECT status, reason FROM payments.webhook_receive('gh', '{"X-GitHub-Delivery": "now"}', '\x', now());
RESET ROLE;
DROP ROLE payments_webhook_app;

-- A tolerance whose parts differ in sign is its sum: '-1 day 25 hours' is
-- one hour, which the table accepts and receive uses (no 22023).
INSERT INTO payments.webhook_endpoints (name, scheme, tolerance) VALUES ('mixed', 'stripe', '-1 day 25 hours');
INSERT INTO payments.webhook_secrets (endpoint, secret) VALUES ('mixed', 'whsec_test_5e4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a');
SELECT status, reason FROM payments.webhook_receive('mixed',
    '{"Stripe-Signature": "t=1700000000,v1=53e844b74495d65e16cdd4766cae542de89b0a91ec19a67134677ab9474c9d49"}',
    '{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_3", "amount": 2000}}}'::bytea,
    to_timestamp(1700000000) + interval '59 minutes');
SELECT status, reason FROM payments.webhook_receive('mixed',
    '{"Stripe-Signature": "t=1700000000,v1=53e844b74495d65e16cdd4766cae542de89b0a91ec19a67134677ab9474c9d49"}',
    '{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_3", "amount": 2000}}}'::bytea,
    to_timestamp(1700000000) + interval '61 minutes');
SELECT pg_temp.try($$INSERT INTO payments.webhook_endpoints (name, scheme, tolerance) VALUES ('neg', 'stripe', '1 day -25 hours')$$);
DELETE FROM payments.webhook_endpoints WHERE name = 'mixed';

-- purge is SECURITY DEFINER with a fixed search_path; receive runs with the
-- caller's rights (to know who moves the clock) and its SQL as the owner.
SELECT p.proname, p.prosecdef, p.proconfig, p.provolatile
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'payments' AND p.proname LIKE 'webhook%' ORDER BY 1;

-- pg_dump keeps the configuration and the inbox.
SELECT c::text AS dumped FROM pg_extension e, unnest(e.extconfig::regclass[]) AS c
WHERE e.extname = 'payments' AND c::text LIKE 'payments.webhook%' ORDER BY 1;

-- Purge: rows older than the earlier of `before` and now() minus
-- payments.webhook_retention (30 days by default) go; younger rows stay
-- whatever `before` says.  GitHub deliveries carry no timestamp, so they
-- can be received "at" any time.
SHOW payments.webhook_retention;
SELECT status FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "delivery-40-days"}',
    'Hello, World!'::bytea, now() - interval '40 days');
SELECT status FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "delivery-10-days"}',
    'Hello, World!'::bytea, now() - interval '10 days');
SELECT status FROM payments.webhook_receive('gh', '{}', 'old junk'::bytea, now() - interval '40 days');
-- (The deliveries above were received at their providers' example times,
-- years ago: make them a day old so that only the rows just added are old.)
UPDATE payments.webhook_inbox SET received_at = now() - interval '1 day'
WHERE received_at < now() - interval '45 days';
UPDATE payments.webhook_rejections SET received_at = now() - interval '1 day'
WHERE received_at < now() - interval '45 days';
SELECT payments.webhook_purge(now() - interval '50 days') AS purged_before_50_days;
-- in batches, as the worker purges: oldest first, at most max_rows
SELECT payments.webhook_purge(now(), 1) AS purged_one;
SELECT payments.webhook_purge(now(), 0) AS purged_none;
SELECT payments.webhook_purge(now()) AS purged_30_days;
SELECT event_id FROM payments.webhook_inbox WHERE event_id LIKE 'delivery-%-days';
SET payments.webhook_retention = '7d';
SELECT payments.webhook_purge() AS purged_7_days;
SELECT event_id FROM payments.webhook_inbox WHERE event_id LIKE 'delivery-%-days';
RESET payments.webhook_retention;
SELECT pg_temp.try($$SELECT payments.webhook_purge(NULL)$$);
SELECT pg_temp.try($$SELECT payments.webhook_purge(now(), -1)$$);
SELECT pg_temp.try($$SET payments.webhook_retention = 0$$);

-- Clean up: deleting an endpoint deletes its secrets.
DELETE FROM payments.webhook_endpoints;
SELECT count(*) AS secrets_left FROM payments.webhook_secrets;
DELETE FROM payments.webhook_inbox;
DELETE FROM payments.webhook_rejections;
