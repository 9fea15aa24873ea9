-- Reconciliation against a reference: random sources (ids on either side
-- zero to three times, NULL amounts, currencies and statuses, currencies
-- in either case, amounts of every scale, rows around the window's edges)
-- reconciled by payments.reconcile and by a plain SQL statement written
-- from the README's rules must give the same rows, in the same order, for
-- several seeds and tolerances.
SET timezone = 'UTC';
CREATE TABLE prop_internal (transaction_id text, amount numeric, currency text,
                            status text, occurred_at timestamptz);
CREATE TABLE prop_gateway (LIKE prop_internal);
CREATE TABLE prop_map (internal_status text, gateway_status text);
INSERT INTO prop_map VALUES ('captured', 'succeeded'), ('refunded', 'reversed');

-- pg_temp.prop_fill(seed): about 1,500 ids drawn from 1,000, on each side
CREATE FUNCTION pg_temp.prop_fill(seed float8) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM setseed(seed);
    TRUNCATE prop_internal, prop_gateway;
    INSERT INTO prop_internal
    SELECT CASE WHEN random() < 0.01 THEN NULL ELSE 'id' || (random() * 1000)::int END,
           CASE WHEN random() < 0.03 THEN NULL
                ELSE round((random() * 4)::numeric, (random() * 3)::int) END,
           (ARRAY['USD', 'usd', 'EUR', 'JPY', NULL])[1 + (random() * 4.4)::int],
           (ARRAY['captured', 'refunded', 'succeeded', 'disputed', NULL])[1 + (random() * 4.4)::int],
           timestamptz '2026-11-30' + random() * interval '26 hours' - interval '1 hour'
    FROM generate_series(1, 1500);
    INSERT INTO prop_gateway
    SELECT CASE WHEN random() < 0.01 THEN NULL ELSE 'id' || (random() * 1000)::int END,
           CASE WHEN random() < 0.03 THEN NULL
                ELSE round((random() * 4)::numeric, (random() * 3)::int) END,
           (ARRAY['USD', 'usd', 'EUR', 'JPY', NULL])[1 + (random() * 4.4)::int],
           (ARRAY['succeeded', 'reversed', 'captured', 'disputed', NULL])[1 + (random() * 4.4)::int],
           timestamptz '2026-11-30' + random() * interval '26 hours' - interval '1 hour'
    FROM generate_series(1, 1500);
    -- rows exactly at the window's bounds
    INSERT INTO prop_internal VALUES ('edge-start', 1, 'USD', 'captured', '2026-11-30'),
                                     ('edge-end', 1, 'USD', 'captured', '2026-12-01');
    INSERT INTO prop_gateway VALUES ('edge-start', 1, 'USD', 'captured', '2026-11-30'),
                                    ('edge-end', 1, 'USD', 'captured', '2026-12-01');
END
$$;

-- The reference: each side's count and first row per id, a full join,
-- then the kinds in their order.
CREATE VIEW prop_side AS
    SELECT 0 AS side, transaction_id, amount, currency, status, occurred_at FROM prop_internal
    UNION ALL
    SELECT 1, transaction_id, amount, currency, status, occurred_at FROM prop_gateway;

CREATE FUNCTION pg_temp.prop_reference(ws timestamptz, we timestamptz, tol numeric)
RETURNS TABLE(seq bigint, transaction_id text, kind text, internal_rows int,
              internal_amount numeric, internal_currency text, internal_status text,
              internal_occurred_at timestamptz, gateway_rows int, gateway_amount numeric,
              gateway_currency text, gateway_status text, gateway_occurred_at timestamptz)
LANGUAGE sql AS $$
    WITH rows AS (
        SELECT side, transaction_id COLLATE "C" AS tid, amount, currency COLLATE "C" AS currency,
               status COLLATE "C" AS status, occurred_at
        FROM prop_side
        WHERE occurred_at >= ws AND occurred_at < we AND transaction_id IS NOT NULL),
    firsts AS (
        SELECT DISTINCT ON (side, tid) side, tid, count(*) OVER (PARTITION BY side, tid)::int AS n,
               amount, currency, status, occurred_at
        FROM rows ORDER BY side, tid, amount, currency, status, occurred_at),
    i AS (SELECT * FROM firsts WHERE side = 0),
    g AS (SELECT * FROM firsts WHERE side = 1),
    pairs AS (
        SELECT COALESCE(i.tid, g.tid) AS tid, i, g,
               COALESCE(i.n, 0) AS ni, COALESCE(g.n, 0) AS ng,
               (i.currency IS NULL AND g.currency IS NULL) OR upper(i.currency) = upper(g.currency)
                   AS same_currency,
               (i.amount IS NULL AND g.amount IS NULL) OR abs(i.amount - g.amount) <= tol
                   AS same_amount,
               (i.status IS NULL AND g.status IS NULL) OR i.status = g.status
                   OR EXISTS (SELECT 1 FROM prop_map m
                              WHERE m.internal_status = i.status AND m.gateway_status = g.status)
                   AS same_status
        FROM i FULL JOIN g ON i.tid = g.tid),
    found AS (
        SELECT p.*, k.ord, k.kind
        FROM pairs AS p,
             LATERAL (VALUES (1, 'missing_internal', p.ni = 0),
                             (2, 'missing_gateway', p.ng = 0),
                             (3, 'amount_mismatch', p.ni = 1 AND p.ng = 1
                                  AND p.same_currency IS TRUE AND p.same_amount IS NOT TRUE),
                             (4, 'currency_mismatch', p.ni = 1 AND p.ng = 1
                                  AND p.same_currency IS NOT TRUE),
                             (5, 'status_mismatch', p.ni = 1 AND p.ng = 1
                                  AND p.same_status IS NOT TRUE),
                             (6, 'duplicate_internal', p.ni > 1),
                             (7, 'duplicate_gateway', p.ng > 1)) AS k(ord, kind, hit)
        WHERE k.hit)
    SELECT row_number() OVER (ORDER BY tid, ord), tid::text, kind,
           ni, (i).amount, (i).currency, (i).status, (i).occurred_at,
           ng, (g).amount, (g).currency, (g).status, (g).occurred_at
    FROM found
$$;

-- pg_temp.prop_check(seed, tol): rows that differ between the two (0), and
-- how many discrepancies there were (so that the check is not vacuous)
CREATE FUNCTION pg_temp.prop_check(seed float8, tol numeric,
                                   OUT differing bigint, OUT discrepancies bigint, OUT kinds bigint)
LANGUAGE plpgsql AS $$
DECLARE
    run bigint;
BEGIN
    PERFORM pg_temp.prop_fill(seed);
    DELETE FROM payments.status_map;
    INSERT INTO payments.status_map SELECT * FROM prop_map;
    run := payments.reconcile('2026-11-30', '2026-12-01', 'prop_internal', 'prop_gateway', tol);
    CREATE TEMP TABLE prop_ours ON COMMIT DROP AS
        SELECT d.seq::bigint, d.transaction_id, d.kind, d.internal_rows, d.internal_amount,
               d.internal_currency, d.internal_status, d.internal_occurred_at, d.gateway_rows,
               d.gateway_amount, d.gateway_currency, d.gateway_status, d.gateway_occurred_at
        FROM payments.reconciliation_discrepancies AS d WHERE d.run_id = run;
    CREATE TEMP TABLE prop_ref ON COMMIT DROP AS
        SELECT * FROM pg_temp.prop_reference('2026-11-30', '2026-12-01', tol);
    -- compared as text, so that a numeric's scale counts
    SELECT count(*) INTO differing FROM (
        (SELECT o::text FROM prop_ours AS o EXCEPT ALL SELECT r::text FROM prop_ref AS r)
        UNION ALL
        (SELECT r::text FROM prop_ref AS r EXCEPT ALL SELECT o::text FROM prop_ours AS o)) AS x;
    SELECT count(*), count(DISTINCT kind) INTO discrepancies, kinds FROM prop_ours;
    -- the run's counts agree with its rows
    IF (SELECT r.discrepancies FROM payments.reconciliation_runs AS r WHERE r.id = run)
       <> discrepancies THEN
        RAISE EXCEPTION 'run % counts % discrepancies, stores %', run,
            (SELECT r.discrepancies FROM payments.reconciliation_runs AS r WHERE r.id = run),
            discrepancies;
    END IF;
    DROP TABLE prop_ours, prop_ref;
END
$$;

SELECT t.seed, t.tol, c.*
FROM (VALUES (0.1::float8, 0::numeric), (0.2, 0), (0.3, 0.5), (0.4, 0.001), (0.5, 10))
     AS t(seed, tol),
     LATERAL pg_temp.prop_check(t.seed, t.tol) AS c;

DROP VIEW prop_side;
DROP TABLE prop_internal, prop_gateway, prop_map;
TRUNCATE payments.status_map, payments.reconciliation_runs CASCADE;
