-- Managing webhook secrets through functions that take the secret as an
-- argument and check it before storing it, so that no error quotes it:
-- add, rotate with an overlap, remove; every error; privileges.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || COALESCE(' / ' || NULLIF(detail, ''), '');
END $$;

INSERT INTO payments.webhook_endpoints (name, scheme) VALUES ('gh', 'github'), ('std', 'standard');

-- add: live at once; GitHub's published example verifies with it
SELECT payments.webhook_secret_add('gh', 'It''s a Secret to Everybody') AS first_id \gset
SELECT status, reason FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "secrets-1"}', 'Hello, World!'::bytea);
-- an expiring one
SELECT payments.webhook_secret_add('gh', 'short-lived', now() + interval '1 hour') > :first_id AS added;

-- rotate: the new secret is live, the others expire after the overlap
-- (one expiring later than that is brought forward; none is extended)
SELECT payments.webhook_secret_rotate('gh', 'the-new-secret', '30 minutes') AS new_id \gset
SELECT id = :new_id AS is_new, expires_at IS NULL AS live_forever,
       expires_at BETWEEN now() + interval '29 minutes' AND now() + interval '30 minutes'
           AS expires_after_overlap
FROM payments.webhook_secrets WHERE endpoint = 'gh' ORDER BY id;
-- during the overlap the old secret still verifies (as the owner, at a
-- later time); after it, it does not
SELECT status, reason FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "secrets-2"}', 'Hello, World!'::bytea, now() + interval '29 minutes');
SELECT status, reason FROM payments.webhook_receive('gh',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
      "X-GitHub-Delivery": "secrets-3"}', 'Hello, World!'::bytea, now() + interval '31 minutes');
-- an overlap of zero retires the others at once
SELECT payments.webhook_secret_rotate('gh', 'newest', '0') > :new_id AS rotated;
SELECT count(*) FILTER (WHERE expires_at IS NULL) AS live, count(*) AS secrets
FROM payments.webhook_secrets WHERE endpoint = 'gh';

-- remove: one secret, by id; false when there is none (or not this endpoint's)
SELECT payments.webhook_secret_remove('gh', :first_id) AS removed;
SELECT payments.webhook_secret_remove('gh', :first_id) AS removed_again;
SELECT payments.webhook_secret_remove('std', :new_id) AS other_endpoint;

-- Standard Webhooks secrets are checked: base64, with or without whsec_
SELECT payments.webhook_secret_add('std', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw') > 0 AS standard_ok;
SELECT payments.webhook_secret_add('std', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw') > 0 AS without_prefix_ok;
SELECT pg_temp.try($$SELECT payments.webhook_secret_add('std', 'whsec_not base64!!')$$);

-- errors never quote the secret
SELECT pg_temp.try($$SELECT payments.webhook_secret_add('nope', 'my-secret-value')$$);
SELECT pg_temp.try($$SELECT payments.webhook_secret_add(NULL, 'my-secret-value')$$);
SELECT pg_temp.try($$SELECT payments.webhook_secret_add('gh', NULL)$$);
SELECT pg_temp.try($$SELECT payments.webhook_secret_add('gh', '')$$);
SELECT pg_temp.try($$SELECT payments.webhook_secret_add('gh', repeat('s', 4097))$$);
SELECT pg_temp.try($$SELECT payments.webhook_secret_rotate('gh', 'my-secret-value', '-1 minute')$$);
SELECT pg_temp.try($$SELECT payments.webhook_secret_rotate('gh', 'my-secret-value', NULL)$$);
SELECT pg_temp.try($$SELECT payments.webhook_secret_remove('gh', NULL)$$);
SELECT count(*) AS secrets_with_my_secret_value FROM payments.webhook_secrets WHERE secret = 'my-secret-value';

-- they are the owner's (or an admin's it grants them to), not an application's
CREATE ROLE payments_secrets_app;
SET ROLE payments_secrets_app;
SELECT pg_temp.try($$SELECT payments.webhook_secret_add('gh', 'x-secret')$$);
SELECT pg_temp.try($$SELECT payments.webhook_secret_rotate('gh', 'x-secret')$$);
SELECT pg_temp.try($$SELECT payments.webhook_secret_remove('gh', 1)$$);
RESET ROLE;
DROP ROLE payments_secrets_app;

DELETE FROM payments.webhook_endpoints;
DELETE FROM payments.webhook_inbox;
DELETE FROM payments.webhook_rejections;
