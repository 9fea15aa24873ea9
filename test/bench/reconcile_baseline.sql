-- test/bench/reconcile_baseline.sql: the baseline of test/bench/reconcile.sh,
-- payments.reconcile's contract as one hand-written SQL statement.
--
-- It writes the same discrepancy rows as payments.reconcile, into
-- reconcile_sql.discrepancies (LIKE payments.reconciliation_discrepancies
-- INCLUDING ALL: the same columns, CHECK, primary key and index; no foreign
-- key to a run row, which payments does pay for).  psql variables:
-- window_start, window_end (quoted), tolerance (a numeric literal), run_id.
--
-- Each side is pre-aggregated per transaction id: one sort of the window's
-- rows by (transaction_id COLLATE "C", amount, currency, status,
-- occurred_at) feeds both the window count (n, a whole-partition frame, so
-- the same sort serves it) and DISTINCT ON (the first row).  Both sides
-- come out in transaction id order, so they meet in a Merge Full Join with
-- no further sort; status_map is a hashed left join (a correlated NOT
-- EXISTS, a subplan per row, was slower).  Only ids with some discrepancy
-- pass the filter (about 7%), and only those are expanded into their kinds
-- by a LATERAL VALUES list; the row_number for seq sorts just them.
-- INSERT ... SELECT cannot run in parallel in PostgreSQL 15, so the plan is
-- serial, as payments' scan is.
INSERT INTO reconcile_sql.discrepancies
    (run_id, seq, transaction_id, kind,
     internal_rows, internal_amount, internal_currency, internal_status, internal_occurred_at,
     gateway_rows, gateway_amount, gateway_currency, gateway_status, gateway_occurred_at)
WITH i AS (
    SELECT DISTINCT ON (transaction_id COLLATE "C")
           transaction_id COLLATE "C" AS id, count(*) OVER w AS n,
           amount, currency, status, occurred_at
    FROM payments.ledger
    WHERE occurred_at >= :'window_start' AND occurred_at < :'window_end'
      AND transaction_id IS NOT NULL
    WINDOW w AS (PARTITION BY transaction_id COLLATE "C"
                 ORDER BY amount, currency COLLATE "C", status COLLATE "C", occurred_at
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ORDER BY transaction_id COLLATE "C", amount, currency COLLATE "C", status COLLATE "C", occurred_at
), g AS (
    SELECT DISTINCT ON (transaction_id COLLATE "C")
           transaction_id COLLATE "C" AS id, count(*) OVER w AS n,
           amount, currency, status, occurred_at
    FROM payments.gateway_report
    WHERE occurred_at >= :'window_start' AND occurred_at < :'window_end'
      AND transaction_id IS NOT NULL
    WINDOW w AS (PARTITION BY transaction_id COLLATE "C"
                 ORDER BY amount, currency COLLATE "C", status COLLATE "C", occurred_at
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ORDER BY transaction_id COLLATE "C", amount, currency COLLATE "C", status COLLATE "C", occurred_at
), d AS (
    SELECT coalesce(i.id, g.id) AS id,
           i.n AS i_n, i.amount AS i_amount, i.currency AS i_currency,
           i.status AS i_status, i.occurred_at AS i_at,
           g.n AS g_n, g.amount AS g_amount, g.currency AS g_currency,
           g.status AS g_status, g.occurred_at AS g_at,
           i.n = 1 AND g.n = 1
               AND upper(i.currency COLLATE "C") <> upper(g.currency COLLATE "C") AS currency_bad,
           i.n = 1 AND g.n = 1
               AND i.status <> g.status AND m.internal_status IS NULL AS status_bad
    FROM i FULL JOIN g ON g.id = i.id
    LEFT JOIN payments.status_map AS m
           ON m.internal_status = i.status AND m.gateway_status = g.status
    WHERE i.n IS DISTINCT FROM 1 OR g.n IS DISTINCT FROM 1
       OR upper(i.currency COLLATE "C") <> upper(g.currency COLLATE "C")
       OR abs(i.amount - g.amount) > :tolerance
       OR (i.status <> g.status AND m.internal_status IS NULL)
)
SELECT :run_id, row_number() OVER (ORDER BY d.id, k.ord), d.id, k.kind,
       coalesce(d.i_n, 0), d.i_amount, d.i_currency, d.i_status, d.i_at,
       coalesce(d.g_n, 0), d.g_amount, d.g_currency, d.g_status, d.g_at
FROM d
CROSS JOIN LATERAL (VALUES
    (1, 'missing_internal', d.i_n IS NULL),
    (2, 'missing_gateway', d.g_n IS NULL),
    (3, 'amount_mismatch', d.i_n = 1 AND d.g_n = 1 AND NOT d.currency_bad
                           AND abs(d.i_amount - d.g_amount) > :tolerance),
    (4, 'currency_mismatch', d.currency_bad),
    (5, 'status_mismatch', d.status_bad),
    (6, 'duplicate_internal', d.i_n > 1),
    (7, 'duplicate_gateway', d.g_n > 1)) AS k(ord, kind, hit)
WHERE k.hit;
