-- payments install script, module webhook: signature verification of
-- incoming webhooks, the endpoints and their secrets, the deduplicating
-- inbox, rejections and their purge.

CREATE FUNCTION payments.webhook_verify(
    scheme text, secrets text[], headers jsonb, body bytea,
    tolerance interval DEFAULT '5 minutes', at timestamptz DEFAULT now())
RETURNS TABLE(valid boolean, reason text, signed_at timestamptz, event_id text)
LANGUAGE c STABLE PARALLEL SAFE ROWS 1
AS 'MODULE_PATHNAME', 'payments_webhook_verify';

COMMENT ON FUNCTION payments.webhook_verify(text, text[], jsonb, bytea, interval, timestamptz) IS
    'verify a webhook delivery''s HMAC-SHA256 signature (stripe, standard, github, shopify, slack)';

-- Endpoints and secrets: readable by the extension's owner only.
CREATE TABLE payments.webhook_endpoints (
    name text PRIMARY KEY CHECK (name <> ''),
    scheme text NOT NULL
        CHECK (scheme IN ('stripe', 'standard', 'github', 'shopify', 'slack')),
    tolerance interval NOT NULL DEFAULT '5 minutes'
        CHECK (tolerance >= interval '0'),
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE payments.webhook_endpoints IS
    'webhook senders: the signature scheme and timestamp tolerance of each';

CREATE TABLE payments.webhook_secrets (
    id bigserial PRIMARY KEY,
    endpoint text NOT NULL REFERENCES payments.webhook_endpoints (name)
        ON DELETE CASCADE ON UPDATE CASCADE,
    secret text NOT NULL CHECK (secret <> ''),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);

CREATE INDEX webhook_secrets_endpoint_idx ON payments.webhook_secrets (endpoint);

COMMENT ON TABLE payments.webhook_secrets IS
    'signing secrets of the endpoints; several are live at once during a rotation; live while expires_at is NULL or later than the delivery';

-- Accepted deliveries, one per (endpoint, event id): the primary key is
-- what deduplicates redeliveries.  It holds event_id, so that on Citus the
-- inbox can be distributed by it; id (returned as inbox_id) is unique by
-- its sequence and indexed for lookups.
CREATE TABLE payments.webhook_inbox (
    id bigserial NOT NULL,
    endpoint text NOT NULL,
    event_id text NOT NULL,
    headers jsonb NOT NULL,
    body bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint, event_id)
);

CREATE INDEX webhook_inbox_id_idx ON payments.webhook_inbox (id);
CREATE INDEX webhook_inbox_received_at_idx ON payments.webhook_inbox (received_at);

COMMENT ON TABLE payments.webhook_inbox IS
    'verified webhook deliveries, deduplicated on (endpoint, event_id); signature headers are not kept';

-- Rejected deliveries: the reason and the body's digest, never the body.
CREATE TABLE payments.webhook_rejections (
    id bigserial PRIMARY KEY,
    endpoint text NOT NULL,
    reason text NOT NULL,
    body_sha256 bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_rejections_received_at_idx
    ON payments.webhook_rejections (received_at);

COMMENT ON TABLE payments.webhook_rejections IS
    'rejected webhook deliveries: endpoint, reason and SHA-256 of the body';

REVOKE ALL ON payments.webhook_endpoints, payments.webhook_secrets,
    payments.webhook_inbox, payments.webhook_rejections FROM PUBLIC;
REVOKE ALL ON SEQUENCE payments.webhook_secrets_id_seq,
    payments.webhook_inbox_id_seq, payments.webhook_rejections_id_seq FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('payments.webhook_endpoints', '');
SELECT pg_catalog.pg_extension_config_dump('payments.webhook_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('payments.webhook_secrets_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payments.webhook_inbox', '');
SELECT pg_catalog.pg_extension_config_dump('payments.webhook_inbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payments.webhook_rejections', '');
SELECT pg_catalog.pg_extension_config_dump('payments.webhook_rejections_id_seq', '');

-- Runs its SQL as the owner of the webhook tables (src/stmt.c), so an
-- application role can receive without being able to read a secret; the
-- secrets never appear in the caller's query.  It runs with the caller's
-- rights otherwise, so that it knows who calls: only the owner may pass an
-- at other than now().
CREATE FUNCTION payments.webhook_receive(
    endpoint text, headers jsonb, body bytea, at timestamptz DEFAULT now())
RETURNS TABLE(status text, inbox_id bigint, event_id text, reason text)
LANGUAGE c VOLATILE ROWS 1
AS 'MODULE_PATHNAME', 'payments_webhook_receive';

COMMENT ON FUNCTION payments.webhook_receive(text, jsonb, bytea, timestamptz) IS
    'verify a delivery with its endpoint''s secrets and store it once in payments.webhook_inbox';

CREATE FUNCTION payments.webhook_purge(
    before timestamptz DEFAULT now(), max_rows bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_webhook_purge';

COMMENT ON FUNCTION payments.webhook_purge(timestamptz, bigint) IS
    'delete inbox and rejection rows received before least(before, now() - payments.webhook_retention), oldest first, at most max_rows; returns the number deleted';

-- Secrets are managed through these, which check a secret before storing
-- it, so that no error quotes it; the server-log scrubber masks their
-- arguments in logged statements (src/redact_log.c).
CREATE FUNCTION payments.webhook_secret_add(
    endpoint text, secret text, expires_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_webhook_secret_add';

COMMENT ON FUNCTION payments.webhook_secret_add(text, text, timestamptz) IS
    'add a live signing secret to an endpoint (optionally expiring); returns its id';

CREATE FUNCTION payments.webhook_secret_rotate(
    endpoint text, secret text, overlap interval DEFAULT '24 hours')
RETURNS bigint
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_webhook_secret_rotate';

COMMENT ON FUNCTION payments.webhook_secret_rotate(text, text, interval) IS
    'add a new signing secret and let the endpoint''s other live secrets expire after overlap; returns the new id';

CREATE FUNCTION payments.webhook_secret_remove(endpoint text, secret_id bigint)
RETURNS boolean
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_webhook_secret_remove';

COMMENT ON FUNCTION payments.webhook_secret_remove(text, bigint) IS
    'delete one secret of an endpoint at once; whether it existed';

REVOKE ALL ON FUNCTION payments.webhook_purge(timestamptz, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION
    payments.webhook_secret_add(text, text, timestamptz),
    payments.webhook_secret_rotate(text, text, interval),
    payments.webhook_secret_remove(text, bigint)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION payments.webhook_receive(text, jsonb, bytea, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payments.webhook_receive(text, jsonb, bytea, timestamptz) TO PUBLIC;
GRANT EXECUTE ON FUNCTION payments.webhook_verify(text, text[], jsonb, bytea, interval, timestamptz) TO PUBLIC;
