-- Reconciliation: every kind of discrepancy, tolerance, status mapping,
-- duplicates, zero- and three-decimal currencies, determinism, user
-- sources, the summary, privileges and every error.
TRUNCATE payments.ledger, payments.gateway_report, payments.status_map,
    payments.reconciliation_runs CASCADE;
SET timezone = 'UTC';

INSERT INTO payments.status_map VALUES ('captured', 'succeeded'), ('refunded', 'refunded');
-- t01 matches through the map; t02 differs by a cent; t03 in another
-- currency (and amount); t04 amount and status; t05 only internal; t06
-- only at the gateway; t07 booked twice; t08 reported twice; t09 JPY as
-- 1000 and 1000.0; t10 KWD by a fils; t11 currency in lower case; t12 a
-- status nobody mapped; t13 outside the window on one side.
INSERT INTO payments.ledger VALUES
    ('t01', 10.00, 'USD', 'captured', '2026-11-30 10:00Z'),
    ('t02', 10.00, 'USD', 'captured', '2026-11-30 10:00Z'),
    ('t03', 10.00, 'USD', 'captured', '2026-11-30 10:00Z'),
    ('t04', 10.00, 'USD', 'captured', '2026-11-30 10:00Z'),
    ('t05', 25.50, 'EUR', 'captured', '2026-11-30 11:00Z'),
    ('t07', 30.00, 'USD', 'captured', '2026-11-30 12:00Z'),
    ('t07', 30.00, 'USD', 'captured', '2026-11-30 12:01Z'),
    ('t08', 40.00, 'USD', 'captured', '2026-11-30 13:00Z'),
    ('t09', 1000, 'JPY', 'captured', '2026-11-30 14:00Z'),
    ('t10', 1.234, 'KWD', 'captured', '2026-11-30 15:00Z'),
    ('t11', 5.00, 'GBP', 'captured', '2026-11-30 16:00Z'),
    ('t12', 7.00, 'USD', 'disputed', '2026-11-30 17:00Z'),
    ('t13', 8.00, 'USD', 'captured', '2026-11-30 23:59:59Z');
INSERT INTO payments.gateway_report VALUES
    ('t01', 10.0, 'USD', 'succeeded', '2026-11-30 10:00Z'),
    ('t02', 10.01, 'USD', 'succeeded', '2026-11-30 10:00Z'),
    ('t03', 11.00, 'EUR', 'succeeded', '2026-11-30 10:00Z'),
    ('t04', 12.00, 'USD', 'refunded', '2026-11-30 10:00Z'),
    ('t06', 5.00, 'USD', 'succeeded', '2026-11-30 11:30Z'),
    ('t07', 30.00, 'USD', 'succeeded', '2026-11-30 12:00Z'),
    ('t08', 40.00, 'USD', 'succeeded', '2026-11-30 13:00Z'),
    ('t08', 41.00, 'USD', 'succeeded', '2026-11-30 13:05Z'),
    ('t09', 1000.0, 'JPY', 'succeeded', '2026-11-30 14:00Z'),
    ('t10', 1.235, 'KWD', 'succeeded', '2026-11-30 15:00Z'),
    ('t12', 7.00, 'USD', 'succeeded', '2026-11-30 17:00Z'),
    ('t13', 8.00, 'USD', 'succeeded', '2026-12-01 00:00:01Z');
-- the default sources refuse a currency that is not three capitals
INSERT INTO payments.gateway_report VALUES ('t11', 5.00, 'gbp', 'succeeded', '2026-11-30 16:00Z');
INSERT INTO payments.gateway_report VALUES ('t11', 5.00, 'GBP', 'succeeded', '2026-11-30 16:00Z');

-- a run's summary, read after the run (a statement does not see the rows
-- of a function it calls)
CREATE FUNCTION pg_temp.summary_of(ws timestamptz, we timestamptz, tol numeric DEFAULT 0)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    run bigint := payments.reconcile(ws, we, tolerance => tol);
BEGIN
    RETURN (SELECT r.summary FROM payments.reconciliation_runs AS r WHERE r.id = run);
END
$$;

SELECT payments.reconcile('2026-11-30', '2026-12-01') AS first_run \gset
SELECT triggered_by, run_by = current_user AS run_by_me, internal_source, gateway_source,
       tolerance, internal_rows, gateway_rows, transactions, matched, discrepancies,
       counts, summary, finished_at >= started_at AS finished, duration >= '0' AS timed
    FROM payments.reconciliation_runs WHERE id = :first_run;
SELECT seq, transaction_id, kind,
       internal_rows AS i_rows, internal_amount AS i_amount, internal_currency AS i_cur,
       internal_status AS i_status, internal_occurred_at AS i_at,
       gateway_rows AS g_rows, gateway_amount AS g_amount, gateway_currency AS g_cur,
       gateway_status AS g_status, gateway_occurred_at AS g_at
    FROM payments.reconciliation_discrepancies WHERE run_id = :first_run ORDER BY seq;

-- a tolerance of a cent (in the currency's major unit) forgives t02 and
-- t10, not t04 (two units) and not t03 (another currency)
SELECT payments.reconcile('2026-11-30', '2026-12-01', tolerance => 0.01) AS tolerant_run \gset
SELECT summary FROM payments.reconciliation_runs WHERE id = :tolerant_run;
SELECT transaction_id, kind FROM payments.reconciliation_discrepancies
    WHERE run_id = :tolerant_run AND kind = 'amount_mismatch' ORDER BY seq;
-- exactly at the tolerance is a match; just over is not
SELECT pg_temp.summary_of('2026-11-30 10:00Z', '2026-11-30 10:01Z', 2);
SELECT pg_temp.summary_of('2026-11-30 10:00Z', '2026-11-30 10:01Z', 1.99);

-- determinism: the same data gives the same rows in the same order, the
-- same counts and summary, in a new run that keeps the old one
SELECT payments.reconcile('2026-11-30', '2026-12-01') AS second_run \gset
SELECT :second_run > :first_run AS new_run,
       (SELECT count(*) FROM payments.reconciliation_runs WHERE id IN (:first_run, :second_run)) AS runs_kept;
SELECT count(*) AS differing_rows FROM (
    (SELECT seq, transaction_id, kind, internal_rows, internal_amount, internal_currency,
            internal_status, internal_occurred_at, gateway_rows, gateway_amount,
            gateway_currency, gateway_status, gateway_occurred_at
       FROM payments.reconciliation_discrepancies WHERE run_id = :first_run
     EXCEPT ALL
     SELECT seq, transaction_id, kind, internal_rows, internal_amount, internal_currency,
            internal_status, internal_occurred_at, gateway_rows, gateway_amount,
            gateway_currency, gateway_status, gateway_occurred_at
       FROM payments.reconciliation_discrepancies WHERE run_id = :second_run)
    UNION ALL
    (SELECT seq, transaction_id, kind, internal_rows, internal_amount, internal_currency,
            internal_status, internal_occurred_at, gateway_rows, gateway_amount,
            gateway_currency, gateway_status, gateway_occurred_at
       FROM payments.reconciliation_discrepancies WHERE run_id = :second_run
     EXCEPT ALL
     SELECT seq, transaction_id, kind, internal_rows, internal_amount, internal_currency,
            internal_status, internal_occurred_at, gateway_rows, gateway_amount,
            gateway_currency, gateway_status, gateway_occurred_at
       FROM payments.reconciliation_discrepancies WHERE run_id = :first_run)) AS d;
SELECT a.summary = b.summary AS same_summary, a.counts = b.counts AS same_counts
    FROM payments.reconciliation_runs a, payments.reconciliation_runs b
    WHERE a.id = :first_run AND b.id = :second_run;

-- open discrepancies: the latest run of each window only, by day and kind;
-- a resolved one is no longer open
SELECT day, kind, discrepancies FROM payments.reconciliation_open
    WHERE run_ids = ARRAY[:second_run]::bigint[] ORDER BY day, kind;
SELECT payments.reconciliation_resolve(:second_run, 't05', 'booked late, see ticket 42') AS resolved;
SELECT payments.reconciliation_resolve(:second_run, 't05', 'again') AS resolved_again;
SELECT count(*) AS open_missing_gateway FROM payments.reconciliation_open
    WHERE run_ids = ARRAY[:second_run]::bigint[] AND kind = 'missing_gateway';

-- a window where everything matches, and an empty one
DELETE FROM payments.ledger WHERE transaction_id <> 't01';
DELETE FROM payments.gateway_report WHERE transaction_id <> 't01';
SELECT pg_temp.summary_of('2026-11-30', '2026-12-01');
SELECT counts FROM payments.reconciliation_runs ORDER BY id DESC LIMIT 1;
SELECT pg_temp.summary_of('2020-01-01', '2020-01-02');
-- without the status map entry, captured and succeeded differ
DELETE FROM payments.status_map WHERE internal_status = 'captured';
SELECT pg_temp.summary_of('2026-11-30', '2026-12-01');

-- any table or view with the five columns is a source: here uuid ids,
-- amounts in cents converted by a view, a timestamp without time zone
-- (read in the session's zone), and statuses of the gateway's own
CREATE TABLE orders (id uuid, cents bigint, cur char(3), state text, at timestamp);
CREATE VIEW orders_ledger AS
    SELECT id AS transaction_id, cents / 100.0 AS amount, cur AS currency,
           state AS status, at AS occurred_at FROM orders;
CREATE TABLE psp_report (transaction_id uuid, amount numeric(12,2), currency text,
                         status varchar(20), occurred_at timestamptz, fee numeric);
INSERT INTO orders VALUES
    ('00000000-0000-0000-0000-000000000001', 1999, 'usd', 'paid', '2026-11-30 09:00'),
    ('00000000-0000-0000-0000-000000000002', 500, 'USD', 'paid', '2026-11-30 09:30');
INSERT INTO psp_report VALUES
    ('00000000-0000-0000-0000-000000000001', 19.99, 'USD', 'paid', '2026-11-30 09:00Z', 0.3),
    ('00000000-0000-0000-0000-000000000002', 5.00, 'USD', 'failed', '2026-11-30 09:30Z', 0);
SELECT payments.reconcile('2026-11-30', '2026-12-01', 'orders_ledger', 'psp_report') AS user_run \gset
SELECT internal_source, gateway_source, summary FROM payments.reconciliation_runs WHERE id = :user_run;
SELECT transaction_id, kind, internal_status, gateway_status
    FROM payments.reconciliation_discrepancies WHERE run_id = :user_run ORDER BY seq;

-- errors
SELECT payments.reconcile(NULL, '2026-12-01');
SELECT payments.reconcile('2026-11-30', NULL);
SELECT payments.reconcile('2026-11-30', '2026-12-01', NULL);
SELECT payments.reconcile('2026-11-30', '2026-12-01', tolerance => NULL);
SELECT payments.reconcile('2026-12-01', '2026-12-01');
SELECT payments.reconcile('2026-12-02', '2026-12-01');
SELECT payments.reconcile('2026-11-30', '2026-12-01', tolerance => -0.01);
SELECT payments.reconcile('2026-11-30', '2026-12-01', tolerance => 'NaN');
SELECT payments.reconcile('2026-11-30', '2026-12-01', 'no_such_table');
CREATE TABLE not_a_source (transaction_id text, amount numeric, currency text, status text);
SELECT payments.reconcile('2026-11-30', '2026-12-01', 'not_a_source');
SELECT payments.reconcile('2026-11-30', '2026-12-01', gateway => 'not_a_source');
BEGIN READ ONLY;
SELECT payments.reconcile('2026-11-30', '2026-12-01');
ROLLBACK;
-- a failed run leaves nothing behind: no run row, no discrepancy
CREATE TABLE bad_amounts (transaction_id text, amount text, currency text, status text,
                          occurred_at timestamptz);
INSERT INTO bad_amounts VALUES ('x', 'twelve', 'USD', 'captured', '2026-11-30 10:00Z');
SELECT count(*) AS runs_before FROM payments.reconciliation_runs \gset
SELECT payments.reconcile('2026-11-30', '2026-12-01', 'bad_amounts');
SELECT count(*) - :runs_before AS runs_left_by_failure FROM payments.reconciliation_runs;

-- privileges: an application role may not run or read reconciliations;
-- a finance role granted reconcile reads the sources with its own rights
CREATE ROLE payments_recon_app;
CREATE ROLE payments_recon_finance;
GRANT EXECUTE ON FUNCTION payments.reconcile(timestamptz, timestamptz, regclass, regclass, numeric)
    TO payments_recon_finance;
GRANT SELECT ON orders_ledger TO payments_recon_finance;
SET ROLE payments_recon_app;
SELECT payments.reconcile('2026-11-30', '2026-12-01');
SELECT count(*) FROM payments.ledger;
SELECT count(*) FROM payments.reconciliation_runs;
SELECT count(*) FROM payments.reconciliation_discrepancies;
SELECT count(*) FROM payments.reconciliation_open;
SELECT payments.worker_run_now();
RESET ROLE;
SET ROLE payments_recon_finance;
SELECT payments.reconcile('2026-11-30', '2026-12-01', 'orders_ledger', 'psp_report');
GRANT SELECT ON psp_report TO payments_recon_finance;
RESET ROLE;
GRANT SELECT ON psp_report TO payments_recon_finance;
SET ROLE payments_recon_finance;
SELECT payments.reconcile('2026-11-30', '2026-12-01', 'orders_ledger', 'psp_report') > 0 AS ran;
RESET ROLE;
SELECT run_by, triggered_by, summary FROM payments.reconciliation_runs ORDER BY id DESC LIMIT 1;

-- the worker's view answers whatever the worker is doing
SELECT state IS NOT NULL AS has_state, database FROM payments.worker_status;

DROP VIEW orders_ledger;
DROP TABLE orders, psp_report, not_a_source, bad_amounts;
DROP ROLE payments_recon_app;
REVOKE ALL ON FUNCTION payments.reconcile(timestamptz, timestamptz, regclass, regclass, numeric)
    FROM payments_recon_finance;
DROP ROLE payments_recon_finance;
TRUNCATE payments.ledger, payments.gateway_report, payments.status_map,
    payments.reconciliation_runs CASCADE;
