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
