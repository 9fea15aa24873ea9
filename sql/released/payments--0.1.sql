-- payments install script, module core: schema, error catalog, counters.
-- Every other module follows this file in the install script.

\echo Use "CREATE EXTENSION payments" to load this file. \quit

-- The extension object lives in pg_catalog (as pg_cron does) and owns this
-- schema, so DROP EXTENSION removes it and pg_dump recreates it.
CREATE SCHEMA payments;

CREATE FUNCTION payments.error_codes_list(
    OUT sqlstate text, OUT name text, OUT retriable boolean,
    OUT http_status integer, OUT meaning text)
RETURNS SETOF record
LANGUAGE c STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_error_codes';

CREATE VIEW payments.error_codes AS
    SELECT sqlstate, name, retriable, http_status, meaning
    FROM payments.error_codes_list();

COMMENT ON VIEW payments.error_codes IS
    'every SQLSTATE of class PM the extension raises, with retry advice and an HTTP status';

CREATE FUNCTION payments.stats_list(OUT name text, OUT value bigint)
RETURNS SETOF record
LANGUAGE c STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_stats';

CREATE VIEW payments.stats AS
    SELECT name, value FROM payments.stats_list();

COMMENT ON VIEW payments.stats IS
    'counters since server start (needs shared_preload_libraries = ''payments''; empty otherwise)';

CREATE FUNCTION payments.preloaded()
RETURNS boolean
LANGUAGE c STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_preloaded';

COMMENT ON FUNCTION payments.preloaded() IS
    'whether the server loaded payments at start (shared_preload_libraries)';

DO $$
BEGIN
    IF NOT payments.preloaded() THEN
        RAISE WARNING 'payments is not in shared_preload_libraries: the server-log scrubber is off, so card numbers and webhook secrets in statements and errors reach the server log unmasked; the background worker and the counters are off too'
            USING HINT = 'Add payments to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
END
$$;

GRANT USAGE ON SCHEMA payments TO PUBLIC;
GRANT SELECT ON payments.error_codes, payments.stats TO PUBLIC;
-- payments: idempotency keys (insert-or-return).  See src/idempotency.c.
--
-- Applications never touch the table: they call the functions.  Begin,
-- checkpoint, complete and fail run with the caller's rights: their direct
-- paths need none, and every SQL statement they run is run by the C code
-- as the table's owner with search_path pinned to pg_catalog, pg_temp
-- (src/stmt.c), which is what SECURITY DEFINER with SET search_path would
-- do, without its cost on the calls that run no SQL.  Status and purge are
-- SECURITY DEFINER, for the roles they are granted to.

-- One row per (scope, key).  Keys and scopes are opaque identifiers, so they
-- use the "C" collation: byte comparison, and the index order the C code's
-- direct index lookups expect.
CREATE TABLE payments.idempotency_keys (
    scope          text COLLATE pg_catalog."C" NOT NULL,
    key            text COLLATE pg_catalog."C" NOT NULL,
    fingerprint    bytea NOT NULL,
    state          text NOT NULL,
    recovery_point text,
    response       jsonb,
    error          jsonb,
    created_at     timestamptz NOT NULL,
    locked_until   timestamptz,
    expires_at     timestamptz NOT NULL,
    lease          interval NOT NULL,
    ttl            interval NOT NULL,
    owner_token    uuid,
    PRIMARY KEY (scope, key),
    CONSTRAINT idempotency_keys_key_check
        CHECK (pg_catalog.char_length(key) OPERATOR(pg_catalog.<=) 255
               AND key OPERATOR(pg_catalog.<>) ''),
    CONSTRAINT idempotency_keys_scope_check
        CHECK (pg_catalog.char_length(scope) OPERATOR(pg_catalog.<=) 255
               AND scope OPERATOR(pg_catalog.<>) ''),
    CONSTRAINT idempotency_keys_fingerprint_check
        CHECK (pg_catalog.octet_length(fingerprint) OPERATOR(pg_catalog.=) 32),
    CONSTRAINT idempotency_keys_state_check
        CHECK (state OPERATOR(pg_catalog.=) ANY
               (ARRAY['in_flight', 'completed', 'failed']::pg_catalog.text[]))
);

CREATE INDEX idempotency_keys_expires_at_idx
    ON payments.idempotency_keys (expires_at);

COMMENT ON TABLE payments.idempotency_keys IS
    'idempotency keys: one row per (scope, key); use the payments.idempotency_* functions';

SELECT pg_catalog.pg_extension_config_dump('payments.idempotency_keys', '');

REVOKE ALL ON payments.idempotency_keys FROM PUBLIC;

CREATE FUNCTION payments.idempotency_begin(
    key text, request jsonb, scope text DEFAULT 'default',
    ttl interval DEFAULT '24 hours', lease interval DEFAULT '1 minute')
RETURNS TABLE(outcome text, recovery_point text, response jsonb,
              error jsonb, created_at timestamptz, token uuid)
LANGUAGE c VOLATILE ROWS 1
AS 'MODULE_PATHNAME', 'payments_idempotency_begin';

COMMENT ON FUNCTION payments.idempotency_begin(text, jsonb, text, interval, interval) IS
    'start, replay or resume the request under an idempotency key; started and resumed return the owner token';

CREATE FUNCTION payments.idempotency_checkpoint(
    key text, recovery_point text, scope text DEFAULT 'default',
    token uuid DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_idempotency_checkpoint';

COMMENT ON FUNCTION payments.idempotency_checkpoint(text, text, text, uuid) IS
    'record the progress of an in-flight key and renew its lease';

CREATE FUNCTION payments.idempotency_complete(
    key text, response jsonb, scope text DEFAULT 'default',
    token uuid DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_idempotency_complete';

COMMENT ON FUNCTION payments.idempotency_complete(text, jsonb, text, uuid) IS
    'store the response of an in-flight key; later begins replay it for at least ttl';

CREATE FUNCTION payments.idempotency_fail(
    key text, error jsonb, retriable boolean, scope text DEFAULT 'default',
    token uuid DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_idempotency_fail';

COMMENT ON FUNCTION payments.idempotency_fail(text, jsonb, boolean, text, uuid) IS
    'end an in-flight key: a retriable failure frees it, a terminal one is stored and replayed';

CREATE FUNCTION payments.idempotency_status(key text, scope text DEFAULT 'default')
RETURNS TABLE(state text, expired boolean, created_at timestamptz,
              expires_at timestamptz, locked_until timestamptz,
              recovery_point text)
LANGUAGE c STABLE SECURITY DEFINER ROWS 1
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_idempotency_status';

COMMENT ON FUNCTION payments.idempotency_status(text, text) IS
    'what a key is, for support: state and times, never the response or error';

CREATE FUNCTION payments.idempotency_purge(
    before timestamptz DEFAULT pg_catalog.now(), max_rows bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_idempotency_purge';

COMMENT ON FUNCTION payments.idempotency_purge(timestamptz, bigint) IS
    'delete keys that expired before the given time, at most max_rows; returns the number deleted';

REVOKE ALL ON FUNCTION
    payments.idempotency_begin(text, jsonb, text, interval, interval),
    payments.idempotency_checkpoint(text, text, text, uuid),
    payments.idempotency_complete(text, jsonb, text, uuid),
    payments.idempotency_fail(text, jsonb, boolean, text, uuid),
    payments.idempotency_status(text, text),
    payments.idempotency_purge(timestamptz, bigint)
    FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    payments.idempotency_begin(text, jsonb, text, interval, interval),
    payments.idempotency_checkpoint(text, text, text, uuid),
    payments.idempotency_complete(text, jsonb, text, uuid),
    payments.idempotency_fail(text, jsonb, boolean, text, uuid)
    TO PUBLIC;

-- Looking at keys is for support staff, purging for maintenance (the
-- background worker runs it as the owner): grant them to such roles.
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

-- Accepted deliveries, one per (endpoint, event id): the unique index is
-- what deduplicates redeliveries.
CREATE TABLE payments.webhook_inbox (
    id bigserial PRIMARY KEY,
    endpoint text NOT NULL,
    event_id text NOT NULL,
    headers jsonb NOT NULL,
    body bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint, event_id)
);

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
-- payments install script, module redact: PCI redaction of card numbers,
-- CVVs and magnetic-stripe tracks in text, jsonb, table rows and logs.

CREATE FUNCTION payments.luhn_valid(text) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_luhn_valid';

COMMENT ON FUNCTION payments.luhn_valid(text) IS
    'whether the digits pass the Luhn check (spaces and dashes ignored; any other character, or fewer than 2 digits, gives false)';

CREATE FUNCTION payments.contains_pan(text) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_contains_pan';

COMMENT ON FUNCTION payments.contains_pan(text) IS
    'whether the text holds a card number (alone or in track data), by the rules of payments.redact; usable in CHECK constraints';

CREATE FUNCTION payments.redact(text) RETURNS text
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_redact_text';

COMMENT ON FUNCTION payments.redact(text) IS
    'mask card numbers (payments.pan_mask), replace labelled CVVs and track data';

CREATE FUNCTION payments.redact(jsonb) RETURNS jsonb
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_redact_jsonb';

COMMENT ON FUNCTION payments.redact(jsonb) IS
    'scrub every string and key, mask numbers that are card numbers, replace values of sensitive keys (cvv, card_number, pan, track1, ...) at any depth';

CREATE FUNCTION payments.redact_trigger() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'payments_redact_trigger';

COMMENT ON FUNCTION payments.redact_trigger() IS
    'BEFORE INSERT OR UPDATE FOR EACH ROW trigger: scrubs the named columns (text, varchar, char, jsonb, text[]), every such column when none is named';
-- payments install script, module fraud: the pre-charge screen.  Rules and
-- lists are configuration kept by an administrator; fraud_evaluate runs the
-- enabled rules on a context and records the decision, every rule's verdict
-- and the velocity rows later evaluations count.  See src/fraud.c.
--
-- fraud_evaluate runs with the caller's rights, and the C code runs its SQL
-- as the owner of payments.fraud_rules with search_path pinned (src/stmt.c),
-- so an application role needs no right on any of these tables.

-- The rules, in position order (ties by name).  Every rule is checked by
-- payments.fraud_rule_check when written, so a rule that could not run is
-- never stored; the statement trigger tells every session to reload.
CREATE FUNCTION payments.fraud_rule_check(
    name text, kind text, params jsonb, action text, score integer, mode text)
RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payments_fraud_rule_check';

COMMENT ON FUNCTION payments.fraud_rule_check(text, text, jsonb, text, integer, text) IS
    'true when the rule is valid; otherwise an error naming the rule and what is wrong (for an expression, the position)';

CREATE TABLE payments.fraud_rules (
    name       text COLLATE pg_catalog."C" PRIMARY KEY,
    kind       text NOT NULL,
    params     jsonb NOT NULL DEFAULT '{}',
    action     text,
    score      integer,
    position   integer NOT NULL DEFAULT 0,
    enabled    boolean NOT NULL DEFAULT true,
    mode       text NOT NULL DEFAULT 'enforce',
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT fraud_rules_valid
        CHECK (payments.fraud_rule_check(name, kind, params, action, score, mode))
);

COMMENT ON TABLE payments.fraud_rules IS
    'fraud rules: kind, params, action and score (NULL: the kind''s default), position, enabled, mode enforce|shadow';

CREATE FUNCTION payments.fraud_rules_changed() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'payments_fraud_rules_changed';

CREATE TRIGGER fraud_rules_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON payments.fraud_rules
    FOR EACH STATEMENT EXECUTE FUNCTION payments.fraud_rules_changed();

-- Lists: one row per entry.  Email fields are compared case-insensitively,
-- through the second index.
CREATE TABLE payments.fraud_lists (
    list_name text COLLATE pg_catalog."C" NOT NULL,
    value     text COLLATE pg_catalog."C" NOT NULL,
    note      text,
    added_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (list_name, value),
    CONSTRAINT fraud_lists_list_name_check CHECK (list_name <> '')
);

CREATE INDEX fraud_lists_folded_idx
    ON payments.fraud_lists (list_name, pg_catalog.lower(value));

COMMENT ON TABLE payments.fraud_lists IS
    'named lists (blocklists, allowlists) used by blocklist rules and IN LIST expressions';

-- The audit trail: one row per recorded evaluation.  The context is stored
-- as payments.redact(jsonb) leaves it.
CREATE TABLE payments.fraud_evaluations (
    id           bigserial PRIMARY KEY,
    evaluated_at timestamptz NOT NULL,
    decision     text NOT NULL
        CHECK (decision IN ('approve', 'review', 'challenge', 'block')),
    score        integer NOT NULL,
    blocked_by   text,
    context      jsonb NOT NULL,
    verdicts     jsonb NOT NULL
);

-- Rows arrive in time order and are read by time range (the hits view,
-- backtests, purges): a BRIN index finds the ranges for a fraction of a
-- B-tree's cost on every insert.
CREATE INDEX fraud_evaluations_evaluated_at_idx
    ON payments.fraud_evaluations USING brin (evaluated_at);

COMMENT ON TABLE payments.fraud_evaluations IS
    'every recorded fraud evaluation: redacted context, decision, score, blocked_by and each rule''s verdict';

-- What velocity rules count: one row per recorded evaluation and key field
-- of an enabled velocity rule, holding the key's value and the values of
-- the rules' sum fields.  The primary key is also the index a count scans
-- (a key's rows after the window's start); it leads with the key's value,
-- the column a distributed table is spread by.
CREATE TABLE payments.fraud_velocity (
    key_value     text COLLATE pg_catalog."C" NOT NULL,
    key_field     text COLLATE pg_catalog."C" NOT NULL,
    at            timestamptz NOT NULL,
    evaluation_id bigint NOT NULL,
    amounts       jsonb,
    PRIMARY KEY (key_value, key_field, at, evaluation_id)
);

-- For the purge; rows arrive in time order, as in the audit trail.
CREATE INDEX fraud_velocity_at_idx ON payments.fraud_velocity USING brin (at);

COMMENT ON TABLE payments.fraud_velocity IS
    'velocity history: (key value, key field, time) of each recorded evaluation, counted by velocity rules';

REVOKE ALL ON payments.fraud_rules, payments.fraud_lists,
    payments.fraud_evaluations, payments.fraud_velocity FROM PUBLIC;
REVOKE ALL ON SEQUENCE payments.fraud_evaluations_id_seq FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('payments.fraud_rules', '');
SELECT pg_catalog.pg_extension_config_dump('payments.fraud_lists', '');
SELECT pg_catalog.pg_extension_config_dump('payments.fraud_evaluations', '');
SELECT pg_catalog.pg_extension_config_dump('payments.fraud_evaluations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payments.fraud_velocity', '');

CREATE FUNCTION payments.fraud_evaluate(
    context jsonb, at timestamptz DEFAULT pg_catalog.now(),
    record boolean DEFAULT true)
RETURNS TABLE(decision text, score integer, blocked_by text, verdicts jsonb,
              evaluation_id bigint)
LANGUAGE c VOLATILE ROWS 1
AS 'MODULE_PATHNAME', 'payments_fraud_evaluate';

COMMENT ON FUNCTION payments.fraud_evaluate(jsonb, timestamptz, boolean) IS
    'run the enabled fraud rules on a context: approve, review, challenge or block; recorded in payments.fraud_evaluations';

CREATE FUNCTION payments.fraud_backtest(rule jsonb, since timestamptz)
RETURNS TABLE(evaluations bigint, hits bigint, changed bigint, changes jsonb)
LANGUAGE c STABLE ROWS 1
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_fraud_backtest';

COMMENT ON FUNCTION payments.fraud_backtest(jsonb, timestamptz) IS
    'how a candidate rule would have decided the evaluations recorded since a time: hits, decisions changed, and how';

-- Retention: the audit trail older than before, and velocity rows no
-- enabled velocity rule can count any more, at most max_rows of each.
CREATE FUNCTION payments.fraud_purge(
    before timestamptz, max_rows bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payments_fraud_purge';

COMMENT ON FUNCTION payments.fraud_purge(timestamptz, bigint) IS
    'delete evaluations recorded before a time and velocity rows older than every enabled window, at most max_rows of each; returns the rows deleted';

-- How often each rule hit, from the audit trail, for analysts.
CREATE VIEW payments.fraud_rule_hits AS
    SELECT v ->> 'rule' AS rule,
           pg_catalog.bool_or(v ? 'shadow') AS shadow,
           pg_catalog.count(*) FILTER (
               WHERE e.evaluated_at > pg_catalog.now() - interval '1 day')
               AS evaluated_1d,
           pg_catalog.count(*) FILTER (
               WHERE (v ->> 'hit')::boolean
                 AND e.evaluated_at > pg_catalog.now() - interval '1 day')
               AS hits_1d,
           pg_catalog.count(*) AS evaluated_7d,
           pg_catalog.count(*) FILTER (WHERE (v ->> 'hit')::boolean) AS hits_7d,
           pg_catalog.count(*) FILTER (WHERE v ? 'error') AS errors_7d,
           pg_catalog.max(e.evaluated_at) FILTER (WHERE (v ->> 'hit')::boolean)
               AS last_hit_at
    FROM payments.fraud_evaluations AS e,
         pg_catalog.jsonb_array_elements(e.verdicts) AS v
    WHERE e.evaluated_at > pg_catalog.now() - interval '7 days'
      AND NOT v ? 'skipped'
    GROUP BY v ->> 'rule';

COMMENT ON VIEW payments.fraud_rule_hits IS
    'per rule, evaluations that reached it and hits in the last day and week, errors, last hit (from payments.fraud_evaluations)';

REVOKE ALL ON payments.fraud_rule_hits FROM PUBLIC;
REVOKE ALL ON FUNCTION
    payments.fraud_evaluate(jsonb, timestamptz, boolean),
    payments.fraud_backtest(jsonb, timestamptz),
    payments.fraud_purge(timestamptz, bigint),
    payments.fraud_rules_changed()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    payments.fraud_evaluate(jsonb, timestamptz, boolean)
    TO PUBLIC;
-- payments install script, module reconcile: what the database recorded
-- against what the gateway settled, and the background worker that runs it
-- every night.  See src/reconcile.c and src/worker.c.
--
-- reconcile runs with the caller's rights: it reads the two sources as the
-- caller (privileges and row security apply), and the C code writes the
-- run and its discrepancies as the owner of payments.reconciliation_runs.

-- The default sources.  Any table or view with these five columns works as
-- a source; these have no other column, so COPY payments.ledger FROM ...
-- loads a five-column file as it is.  No unique transaction_id: a
-- transaction booked twice is what reconcile must be able to find.
CREATE TABLE payments.ledger (
    transaction_id text NOT NULL,
    amount         numeric NOT NULL,
    currency       text NOT NULL CONSTRAINT ledger_currency_check
                       CHECK (currency ~ '^[A-Z]{3}$'),
    status         text NOT NULL,
    occurred_at    timestamptz NOT NULL
);

CREATE INDEX ledger_occurred_at_idx ON payments.ledger (occurred_at);
CREATE INDEX ledger_transaction_id_idx ON payments.ledger (transaction_id);

COMMENT ON TABLE payments.ledger IS
    'what the database recorded: one row per transaction (amount in major units, ISO 4217 currency)';

CREATE TABLE payments.gateway_report (
    transaction_id text NOT NULL,
    amount         numeric NOT NULL,
    currency       text NOT NULL CONSTRAINT gateway_report_currency_check
                       CHECK (currency ~ '^[A-Z]{3}$'),
    status         text NOT NULL,
    occurred_at    timestamptz NOT NULL
);

CREATE INDEX gateway_report_occurred_at_idx ON payments.gateway_report (occurred_at);
CREATE INDEX gateway_report_transaction_id_idx ON payments.gateway_report (transaction_id);

COMMENT ON TABLE payments.gateway_report IS
    'what the gateway settled, loaded from its settlement report (same five columns as payments.ledger)';

-- Statuses that mean the same on both sides (equal statuses always match).
CREATE TABLE payments.status_map (
    internal_status text NOT NULL,
    gateway_status  text NOT NULL,
    PRIMARY KEY (internal_status, gateway_status)
);

COMMENT ON TABLE payments.status_map IS
    'pairs of an internal and a gateway status that mean the same, e.g. (captured, succeeded)';

CREATE TABLE payments.reconciliation_runs (
    id              bigserial PRIMARY KEY,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    internal_source text NOT NULL,
    gateway_source  text NOT NULL,
    tolerance       numeric NOT NULL,
    triggered_by    text NOT NULL CONSTRAINT reconciliation_runs_triggered_by_check
                        CHECK (triggered_by IN ('worker', 'manual')),
    run_by          name NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    duration        interval GENERATED ALWAYS AS (finished_at - started_at) STORED,
    internal_rows   bigint,
    gateway_rows    bigint,
    transactions    bigint,
    matched         bigint,
    discrepancies   bigint,
    counts          jsonb,
    summary         text
);

CREATE INDEX reconciliation_runs_window_idx
    ON payments.reconciliation_runs (window_start, window_end);

COMMENT ON TABLE payments.reconciliation_runs IS
    'one row per reconcile() call: window, sources, who triggered it (worker or manual), how long it took, counts and summary';

-- One row per finding, with both sides' values; seq is the run's
-- deterministic order (by transaction id in byte order, then kind).
CREATE TABLE payments.reconciliation_discrepancies (
    run_id               bigint NOT NULL
                             REFERENCES payments.reconciliation_runs ON DELETE CASCADE,
    seq                  integer NOT NULL,
    transaction_id       text NOT NULL,
    kind                 text NOT NULL CONSTRAINT reconciliation_discrepancies_kind_check
                             CHECK (kind IN ('missing_internal', 'missing_gateway',
                                             'amount_mismatch', 'currency_mismatch',
                                             'status_mismatch', 'duplicate_internal',
                                             'duplicate_gateway')),
    internal_rows        integer NOT NULL,
    internal_amount      numeric,
    internal_currency    text,
    internal_status      text,
    internal_occurred_at timestamptz,
    gateway_rows         integer NOT NULL,
    gateway_amount       numeric,
    gateway_currency     text,
    gateway_status       text,
    gateway_occurred_at  timestamptz,
    resolved_at          timestamptz,
    resolution           text,
    PRIMARY KEY (run_id, seq)
);

CREATE INDEX reconciliation_discrepancies_transaction_id_idx
    ON payments.reconciliation_discrepancies (transaction_id);

COMMENT ON TABLE payments.reconciliation_discrepancies IS
    'what each run found: kind, and the internal and gateway side as recorded (first row of each side, and how many rows it had)';

CREATE FUNCTION payments.reconcile(
    window_start timestamptz, window_end timestamptz,
    internal regclass DEFAULT 'payments.ledger',
    gateway regclass DEFAULT 'payments.gateway_report',
    tolerance numeric DEFAULT 0)
RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_reconcile';

COMMENT ON FUNCTION payments.reconcile(timestamptz, timestamptz, regclass, regclass, numeric) IS
    'compare the two sources'' transactions that occurred in [window_start, window_end); returns the run id';

-- Open findings: those of the latest run of each window and pair of
-- sources (a re-run supersedes the earlier one) not marked resolved, by
-- kind and by the day the transaction occurred in payments.timezone.
CREATE VIEW payments.reconciliation_open AS
    WITH latest AS (
        SELECT DISTINCT ON (window_start, window_end, internal_source, gateway_source) id
        FROM payments.reconciliation_runs
        WHERE finished_at IS NOT NULL
        ORDER BY window_start, window_end, internal_source, gateway_source, id DESC
    )
    SELECT (pg_catalog.timezone(COALESCE(pg_catalog.current_setting('payments.timezone', true), 'UTC'),
                                COALESCE(d.internal_occurred_at, d.gateway_occurred_at)))::date
               AS day,
           d.kind,
           pg_catalog.count(*) AS discrepancies,
           pg_catalog.array_agg(DISTINCT d.run_id ORDER BY d.run_id) AS run_ids
    FROM payments.reconciliation_discrepancies AS d
    JOIN latest ON latest.id = d.run_id
    WHERE d.resolved_at IS NULL
    GROUP BY 1, 2;

COMMENT ON VIEW payments.reconciliation_open IS
    'unresolved discrepancies of the latest run of each window, by day (in payments.timezone) and kind';

CREATE FUNCTION payments.reconciliation_resolve(
    run_id bigint, transaction_id text, resolution text)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH done AS (
        UPDATE payments.reconciliation_discrepancies AS d
        SET resolved_at = pg_catalog.now(), resolution = $3
        WHERE d.run_id = $1 AND d.transaction_id = $2 AND d.resolved_at IS NULL
        RETURNING 1)
    SELECT pg_catalog.count(*)::integer FROM done
$$;

COMMENT ON FUNCTION payments.reconciliation_resolve(bigint, text, text) IS
    'mark a transaction''s open discrepancies of a run as resolved, with a note; returns how many';

-- The background worker (src/worker.c): its state from shared memory.
CREATE FUNCTION payments.worker_status_list(
    OUT state text, OUT pid integer, OUT database text, OUT started_at timestamptz,
    OUT last_run_id bigint, OUT last_run_at timestamptz,
    OUT last_window_start timestamptz, OUT next_run_at timestamptz,
    OUT last_error text, OUT last_error_at timestamptz,
    OUT last_purge_at timestamptz, OUT last_purge jsonb)
RETURNS SETOF record
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'payments_worker_status';

CREATE VIEW payments.worker_status AS
    SELECT * FROM payments.worker_status_list();

COMMENT ON VIEW payments.worker_status IS
    'the background worker: state, last and next reconciliation, last error, what its last purge removed';

CREATE FUNCTION payments.worker_run_now()
RETURNS boolean
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'payments_worker_run_now';

COMMENT ON FUNCTION payments.worker_run_now() IS
    'wake the background worker to reconcile any window that is due (the previous day at the latest) and purge now; false when no worker runs';

SELECT pg_catalog.pg_extension_config_dump('payments.ledger', '');
SELECT pg_catalog.pg_extension_config_dump('payments.gateway_report', '');
SELECT pg_catalog.pg_extension_config_dump('payments.status_map', '');
SELECT pg_catalog.pg_extension_config_dump('payments.reconciliation_runs', '');
SELECT pg_catalog.pg_extension_config_dump('payments.reconciliation_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payments.reconciliation_discrepancies', '');

REVOKE ALL ON payments.ledger, payments.gateway_report, payments.status_map,
    payments.reconciliation_runs, payments.reconciliation_discrepancies,
    payments.reconciliation_open, payments.worker_status
    FROM PUBLIC;
REVOKE ALL ON FUNCTION
    payments.reconcile(timestamptz, timestamptz, regclass, regclass, numeric),
    payments.reconciliation_resolve(bigint, text, text),
    payments.worker_status_list(),
    payments.worker_run_now()
    FROM PUBLIC;
-- payments install script, module saga: durable logs of multi-step
-- checkouts and their compensations.  See src/saga.c.
--
-- The state machine is in C and is the only writer: the functions run with
-- the caller's rights, and the C code runs their SQL as the owner of
-- payments.sagas with search_path pinned (src/stmt.c); ordinary roles have
-- no privilege on the tables, so the log cannot be bypassed.

-- One row per saga.  position is the index (from 0) of the step to run
-- (running) or to compensate (compensating); attempts counts the tries of
-- that action so far.
CREATE TABLE payments.sagas (
    id            text COLLATE pg_catalog."C" PRIMARY KEY,
    name          text NOT NULL,
    state         text NOT NULL CONSTRAINT sagas_state_check
                      CHECK (state IN ('running', 'compensating', 'completed',
                                       'compensated', 'failed_compensation')),
    steps         jsonb NOT NULL,
    context       jsonb NOT NULL DEFAULT '{}',
    position      integer NOT NULL DEFAULT 0,
    attempts      integer NOT NULL DEFAULT 0,
    failed_step   text,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    claimed_until timestamptz,
    claimed_by    text,
    stale_since   timestamptz
) WITH (fillfactor = 70);

-- The in-flight sagas, for recovery and the worker (which then look at
-- updated_at).  Nothing a step changes is indexed, and pages keep room, so
-- a step's update is a HOT update; only the end of a saga leaves the index.
CREATE INDEX sagas_in_flight_idx ON payments.sagas (created_at)
    WHERE state IN ('running', 'compensating');

COMMENT ON TABLE payments.sagas IS
    'one row per saga: state, steps, context, progress (position, attempts, updated_at) and recovery claim';

-- Append-only: every transition, with its time and detail.
CREATE TABLE payments.saga_events (
    id         bigserial PRIMARY KEY,
    saga_id    text COLLATE pg_catalog."C" NOT NULL
                   REFERENCES payments.sagas ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    event      text NOT NULL,
    step       text,
    attempt    integer,
    from_state text,
    to_state   text NOT NULL,
    detail     jsonb
);

CREATE INDEX saga_events_saga_id_idx ON payments.saga_events (saga_id, id);

COMMENT ON TABLE payments.saga_events IS
    'append-only log of every saga transition: event, step, attempt, states before and after, detail';

CREATE FUNCTION payments.saga_events_append_only() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'payments_saga_events_append_only';

CREATE TRIGGER saga_events_append_only
    BEFORE UPDATE OR DELETE ON payments.saga_events
    FOR EACH ROW EXECUTE FUNCTION payments.saga_events_append_only();

CREATE FUNCTION payments.saga_start(
    name text, steps jsonb, context jsonb DEFAULT '{}', saga_id text DEFAULT NULL)
RETURNS text
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_saga_start';

COMMENT ON FUNCTION payments.saga_start(text, jsonb, jsonb, text) IS
    'start a saga (idempotent on saga_id: the same steps return it, other steps are an error); returns its id';

CREATE FUNCTION payments.saga_next(saga_id text)
RETURNS TABLE(action text, step text, attempt integer, state text)
LANGUAGE c STABLE ROWS 1
AS 'MODULE_PATHNAME', 'payments_saga_next';

COMMENT ON FUNCTION payments.saga_next(text) IS
    'what the orchestrator does next: run or compensate a step (and which attempt), or done';

CREATE FUNCTION payments.saga_record(
    saga_id text, step text, outcome text, detail jsonb DEFAULT NULL)
RETURNS text
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_saga_record';

COMMENT ON FUNCTION payments.saga_record(text, text, text, jsonb) IS
    'record the outcome (succeeded or failed) of the step saga_next gave; returns the saga''s new state';

CREATE FUNCTION payments.saga_step_key(saga_id text, step text, attempt integer,
                                       action text DEFAULT 'run')
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN saga_id || ':' || step || ':' ||
       CASE action WHEN 'compensate' THEN 'compensate:' ELSE '' END || attempt;

COMMENT ON FUNCTION payments.saga_step_key(text, text, integer, text) IS
    'the stable idempotency key of one attempt of a step (or of its compensation), to pass to the gateway';

CREATE FUNCTION payments.saga_recoverable(stale interval DEFAULT '5 minutes')
RETURNS TABLE(saga_id text, name text, action text, step text, attempt integer,
              state text, updated_at timestamptz)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'payments_saga_recoverable';

COMMENT ON FUNCTION payments.saga_recoverable(interval) IS
    'claim the running or compensating sagas with no progress for stale, each for one caller at a time (for stale), and say what to do next';

SELECT pg_catalog.pg_extension_config_dump('payments.sagas', '');
SELECT pg_catalog.pg_extension_config_dump('payments.saga_events', '');
SELECT pg_catalog.pg_extension_config_dump('payments.saga_events_id_seq', '');

REVOKE ALL ON payments.sagas, payments.saga_events FROM PUBLIC;
REVOKE ALL ON FUNCTION
    payments.saga_start(text, jsonb, jsonb, text),
    payments.saga_next(text),
    payments.saga_record(text, text, text, jsonb),
    payments.saga_recoverable(interval),
    payments.saga_events_append_only()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    payments.saga_start(text, jsonb, jsonb, text),
    payments.saga_next(text),
    payments.saga_record(text, text, text, jsonb),
    payments.saga_recoverable(interval)
    TO PUBLIC;
