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
