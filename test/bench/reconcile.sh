# test/bench/reconcile.sh: benchmark of payments.reconcile, sourced by
# test/bench/run (which provides bench_sql, bench_check, bench_time and
# bench_verdict on a throwaway cluster with payments installed).
#
# One day's window (2026-11-01 UTC) of payments.ledger against
# payments.gateway_report, 1,000,000 transaction ids (RECONCILE_N): about
# 1,010,000 rows of each side in the window, plus rows just outside it on
# both sides (the previous and next day, and rows a microsecond either side
# of each bound), tolerance 0.01.  About 1% of the ids have each kind of
# discrepancy: missing on either side, amount (beyond the tolerance; ids
# exactly at the tolerance or differing only in scale match), currency
# (some with differing amounts too, which must not count), status (some
# also with an amount or currency mismatch; a reversed status_map pair and
# a case difference count), duplicates on either side (2 or 3 rows, whose
# first row by amount, currency, status, occurred_at is not the first one
# stored; some duplicated on both sides or missing on the other); 38% of
# the ids have statuses that differ but are paired in status_map.
#
# (a) payments.reconcile against test/bench/reconcile_baseline.sql, the
#     same contract as one INSERT ... SELECT (each side pre-aggregated by
#     one sort, a merge full join, the kinds by LATERAL VALUES, seq by
#     row_number) into a table of the same shape; best of 3 each, target:
#     payments takes at most 1.3x the baseline's time (a speed-up >= 0.77).
#     Both run with jit = off (JIT compilation cost the baseline about
#     0.5 s a run here, payments about 0.2 s) and the default work_mem,
#     4 MB.  Before timing, both must write the same discrepancy
#     rows (seq, id, kind, both sides' counts and first rows, compared as
#     text: a numeric's scale counts), and payments' run row must count
#     the same.
# (b) Peak RSS (VmHWM) of the backend that ran each, and of one that only
#     read both tables; with RECONCILE_BIG=1 also of a payments.reconcile
#     of 10,000,000 ids (RECONCILE_BIG_N), about 10,100,000 rows a side, in
#     tables of their own: its peak must stay within 1.5x the 1,000,000-id
#     run's (memory that grew with the window would be about 10x).  VmHWM
#     counts the shared buffers the backend touched too (up to
#     shared_buffers); each figure says how much of it that is.
#
# The worker's nightly schedule (payments.reconcile_time) is switched off
# while this module runs, so that it reconciles nothing during a timing.

RC_N=${RECONCILE_N:-1000000}
RC_BIG_N=${RECONCILE_BIG_N:-10000000}
RC_WS='2026-11-01 00:00:00+00'
RC_WE='2026-11-02 00:00:00+00'
RC_TOL=0.01
RC_CALL="payments.reconcile('$RC_WS', '$RC_WE', tolerance => $RC_TOL)"
RC_VARS="\\set window_start '$RC_WS'
\\set window_end '$RC_WE'
\\set tolerance $RC_TOL"

bench_sql -c "ALTER SYSTEM SET payments.reconcile_time = ''" -c "SELECT pg_reload_conf()" >/dev/null

# rc_generate N LEDGER GATEWAY: the rows of N transaction ids, in one INSERT
# a table; the tables' indexes are dropped for the load and built again.
rc_generate() {
	bench_sql -v n="$1" -v ledger="$2" -v gateway="$3" -v ws="$RC_WS" -v we="$RC_WE" <<'SQL'
CREATE TEMP TABLE rc_indexes AS
SELECT format('DROP INDEX %s', i.indexrelid::regclass) AS drop_it, pg_get_indexdef(i.indexrelid) AS create_it
FROM pg_index AS i
WHERE i.indrelid IN (:'ledger'::regclass, :'gateway'::regclass)
  AND NOT EXISTS (SELECT FROM pg_constraint AS c WHERE c.conindid = i.indexrelid);
SELECT drop_it FROM rc_indexes \gexec

-- id g: r = g % 100 picks what is wrong with it, s = (g / 100) % 60 a variant
INSERT INTO :ledger (transaction_id, amount, currency, status, occurred_at)
SELECT k.id,
       CASE WHEN k.r = 5 AND k.s % 3 = 0 AND cc.c = 1 THEN k.a + 1000 ELSE k.a END,
       CASE WHEN k.r = 5 AND k.s % 3 = 1 AND cc.c = 1 THEN 'USD'
            WHEN k.r = 5 AND k.s % 3 = 1 THEN 'EUR' ELSE k.cur END,
       CASE WHEN k.r = 5 AND k.s % 3 = 2 AND cc.c = 1 THEN 'refunded'
            WHEN k.r = 4 AND k.s % 3 = 1 THEN 'succeeded' ELSE k.ist END,
       k.t + (k.copies - cc.c) * interval '1 minute'
FROM generate_series(1, :n) AS g,
     LATERAL (SELECT g % 100 AS r, (g / 100) % 60 AS s,
                     (ARRAY['ch_', 'pi_', 'py_'])[1 + g % 3] || substr(md5(g::text), 1, 21) AS id,
                     round(((hashint4(g) & 2147483647) % 500000 + 1) / 100.0, 2) AS a,
                     (ARRAY['USD', 'USD', 'USD', 'EUR', 'EUR', 'GBP', 'JPY', 'CAD'])[1 + (g / 3) % 8] AS cur,
                     (hashint4(-g) & 2147483647) % 100 AS m,
                     timestamptz :'ws' + (g::bigint * 86000000000 / :n) * interval '1 microsecond' AS t) AS k0,
     LATERAL (SELECT k0.*,
                     CASE WHEN k0.m < 75 THEN 'captured' WHEN k0.m < 82 THEN 'refunded'
                          WHEN k0.m < 88 THEN 'authorized' WHEN k0.m < 93 THEN 'pending'
                          WHEN k0.m < 97 THEN 'failed' ELSE 'canceled' END AS ist,
                     CASE WHEN k0.r = 0 THEN 0                       -- missing_internal
                          WHEN k0.r = 1 AND k0.s % 4 = 0 THEN 2      -- missing_gateway + duplicate_internal
                          WHEN k0.r = 5 AND k0.s % 3 = 2 THEN 3      -- duplicate_internal
                          WHEN k0.r = 5 THEN 2
                          WHEN k0.r = 6 AND k0.s % 5 = 4 THEN 2      -- both sides duplicated
                          ELSE 1 END AS copies) AS k,
     (VALUES (1), (2), (3)) AS cc(c)
WHERE cc.c <= k.copies
UNION ALL
-- the previous day: outside the window
SELECT 'out_' || h, h, 'USD', 'captured', timestamptz :'ws' - (1 + h % 86000) * interval '1 second'
FROM generate_series(1, :n / 100) AS h
UNION ALL
-- odd h: a microsecond or more before window_start (outside; the gateway's
-- row is at window_start or after); even h: before window_end (inside; the
-- gateway's row is at window_end or after)
SELECT 'edge_' || h, h, 'USD', 'captured',
       CASE WHEN h % 2 = 1 THEN timestamptz :'ws' - h * interval '1 microsecond'
            ELSE timestamptz :'we' - (h / 2) * interval '1 microsecond' END
FROM generate_series(1, :n / 200) AS h;

INSERT INTO :gateway (transaction_id, amount, currency, status, occurred_at)
SELECT k.id,
       CASE WHEN k.r = 2 AND k.s % 2 = 0 THEN k.a + 1           -- amount_mismatch
            WHEN k.r = 2 THEN k.a + 0.02
            WHEN k.r = 3 AND k.s % 2 = 0 THEN k.a + 5           -- hidden by currency_mismatch
            WHEN k.r = 5 THEN k.a + 0.5                         -- not compared: duplicates
            WHEN k.r = 6 AND k.s % 3 = 0 AND cc.c = 1 THEN k.a + 1000
            WHEN k.r = 9 AND k.s % 2 = 0 THEN k.a + 0.01        -- exactly the tolerance: a match
            WHEN k.r = 9 THEN round(k.a, 3)                     -- another scale: a match
            ELSE k.a END,
       CASE WHEN k.r = 3 AND k.cur = 'USD' THEN 'EUR'           -- currency_mismatch
            WHEN k.r = 3 THEN 'USD'
            WHEN k.r = 6 AND k.s % 3 = 1 AND cc.c = 1 THEN 'USD'
            WHEN k.r = 6 AND k.s % 3 = 1 THEN 'EUR' ELSE k.cur END,
       CASE WHEN k.r = 2 AND k.s % 3 = 0 THEN 'disputed'        -- amount and status
            WHEN k.r = 3 AND k.s % 5 = 0 THEN 'disputed'        -- currency and status
            WHEN k.r = 4 AND k.s % 3 = 0 THEN 'disputed'        -- status_mismatch
            WHEN k.r = 4 AND k.s % 3 = 1 THEN 'captured'        -- (succeeded, captured): not mapped
            WHEN k.r = 4 THEN upper(k.gst)                      -- case differs: not mapped
            WHEN k.r = 6 AND k.s % 3 = 2 AND cc.c = 1 THEN 'refunded'
            ELSE k.gst END,
       k.t + (k.g % 60) * interval '1 second' + (k.copies - cc.c) * interval '1 minute'
FROM generate_series(1, :n) AS g,
     LATERAL (SELECT g, g % 100 AS r, (g / 100) % 60 AS s,
                     (ARRAY['ch_', 'pi_', 'py_'])[1 + g % 3] || substr(md5(g::text), 1, 21) AS id,
                     round(((hashint4(g) & 2147483647) % 500000 + 1) / 100.0, 2) AS a,
                     (ARRAY['USD', 'USD', 'USD', 'EUR', 'EUR', 'GBP', 'JPY', 'CAD'])[1 + (g / 3) % 8] AS cur,
                     (hashint4(-g) & 2147483647) % 100 AS m,
                     timestamptz :'ws' + (g::bigint * 86000000000 / :n) * interval '1 microsecond' AS t) AS k0,
     LATERAL (SELECT k0.*,
                     CASE WHEN k0.m < 55 THEN 'captured' WHEN k0.m < 75 THEN 'succeeded'
                          WHEN k0.m < 82 THEN 'refunded' WHEN k0.m < 88 THEN 'requires_capture'
                          WHEN k0.m < 93 THEN 'processing' WHEN k0.m < 97 THEN 'declined'
                          ELSE 'canceled' END AS gst,
                     CASE WHEN k0.r = 1 THEN 0                       -- missing_gateway
                          WHEN k0.r = 0 AND k0.s % 4 = 0 THEN 2      -- missing_internal + duplicate_gateway
                          WHEN k0.r = 6 AND k0.s % 3 = 2 THEN 3      -- duplicate_gateway
                          WHEN k0.r = 6 THEN 2
                          WHEN k0.r = 5 AND k0.s % 5 = 4 THEN 2      -- both sides duplicated
                          ELSE 1 END AS copies) AS k,
     (VALUES (1), (2), (3)) AS cc(c)
WHERE cc.c <= k.copies
UNION ALL
SELECT 'out_' || h, h, 'USD', 'captured', timestamptz :'we' + (h % 86000) * interval '1 second'
FROM generate_series(1, :n / 100) AS h
UNION ALL
SELECT 'edge_' || h, h, 'USD', 'captured',
       CASE WHEN h % 2 = 1 THEN timestamptz :'ws' + (h - 1) * interval '1 microsecond'
            ELSE timestamptz :'we' + (h / 2 - 1) * interval '1 microsecond' END
FROM generate_series(1, :n / 200) AS h;

SELECT create_it FROM rc_indexes \gexec
VACUUM ANALYZE :ledger, :gateway;
SQL
}

# rc_hwm_mb SQL: "PEAK SHARED": peak RSS (VmHWM) of a new backend after it
# ran SQL (statements ending with ";", with jit = off), and how much of its RSS is then shared memory
# (shared buffers it touched), in MB; empty if the statement failed.
rc_hwm_mb() {
	bench_sql -At -F ' ' <<SQL | tail -n 1
SET jit = off;
$1
SELECT round((regexp_match(s, 'VmHWM:\s*(\d+) kB'))[1]::numeric / 1024),
       round((regexp_match(s, 'RssShmem:\s*(\d+) kB'))[1]::numeric / 1024)
FROM pg_read_file('/proc/self/status') AS s;
SQL
}
# rc_mb "PEAK SHARED": how it reads
rc_mb() {
	local peak shared
	read -r peak shared <<<"$1"
	echo "${peak:-?} MB (${shared:-?} MB of it shared buffers)"
}

bench_sql <<'SQL'
CREATE SCHEMA reconcile_sql;
CREATE TABLE reconcile_sql.discrepancies (LIKE payments.reconciliation_discrepancies INCLUDING ALL);
INSERT INTO payments.status_map (internal_status, gateway_status) VALUES
    ('captured', 'succeeded'), ('authorized', 'requires_capture'), ('pending', 'processing'),
    ('failed', 'declined'), ('canceled', 'voided'), ('refunded', 'refund_succeeded'),
    ('disputed', 'chargeback');
SQL
rc_t0=$SECONDS
rc_generate "$RC_N" payments.ledger payments.gateway_report
rc_rows=$(bench_sql -At -F ' ' -c "SELECT
	(SELECT count(*) FROM payments.ledger WHERE occurred_at >= '$RC_WS' AND occurred_at < '$RC_WE'),
	(SELECT count(*) FROM payments.gateway_report WHERE occurred_at >= '$RC_WS' AND occurred_at < '$RC_WE'),
	(SELECT count(*) FROM payments.ledger) + (SELECT count(*) FROM payments.gateway_report)")
read -r rc_in rc_gw rc_all <<<"$rc_rows"
echo "reconcile: $RC_N transaction ids: $rc_in internal and $rc_gw gateway rows in the window, $rc_all rows in all; generated in $((SECONDS - rc_t0)) s"

rc_ok=1
if [ "$(bench_sql -At -c "SELECT to_regprocedure('payments.reconcile(timestamptz, timestamptz, regclass, regclass, numeric)') IS NOT NULL")" != t ]; then
	say "reconcile bench: payments.reconcile is not in this build; timing the baseline alone"
	BENCH_MISSED=$((BENCH_MISSED + 1))
	rc_ok=0
fi

# Both once, untimed: the same discrepancy rows, in the same order, with the
# same values as text; the run row's counts; at least 0.9% of the ids of
# each kind.
bench_sql <<SQL
SET jit = off;
$RC_VARS
\\set run_id 0
\\i $BENCH_DIR/reconcile_baseline.sql
SQL
if [ "$rc_ok" = 1 ]; then
	rc_run=$(bench_sql -At -c "SET jit = off" -c "SELECT $RC_CALL")
	rc_cmp=$(bench_sql -At -F ' ' <<SQL
CREATE TEMP VIEW rc_ours AS
SELECT seq, transaction_id, kind, internal_rows, internal_amount, internal_currency, internal_status,
       internal_occurred_at, gateway_rows, gateway_amount, gateway_currency, gateway_status, gateway_occurred_at
FROM payments.reconciliation_discrepancies WHERE run_id = ${rc_run:-0};
CREATE TEMP VIEW rc_base AS
SELECT seq, transaction_id, kind, internal_rows, internal_amount, internal_currency, internal_status,
       internal_occurred_at, gateway_rows, gateway_amount, gateway_currency, gateway_status, gateway_occurred_at
FROM reconcile_sql.discrepancies;
SELECT (SELECT count(*) FROM rc_ours), (SELECT count(*) FROM rc_base),
       (SELECT count(*) FROM (SELECT * FROM rc_ours EXCEPT ALL SELECT * FROM rc_base) AS d),
       (SELECT count(*) FROM (SELECT * FROM rc_base EXCEPT ALL SELECT * FROM rc_ours) AS d),
       (SELECT md5(string_agg(o::text, E'\n' ORDER BY seq)) FROM rc_ours AS o)
           = (SELECT md5(string_agg(b::text, E'\n' ORDER BY seq)) FROM rc_base AS b);
SQL
)
	read -r rc_n_ours rc_n_base rc_only_ours rc_only_base rc_same <<<"$rc_cmp"
	if [ "${rc_only_ours:-x}" != 0 ] || [ "${rc_only_base:-x}" != 0 ] || [ "${rc_same:-x}" != t ] ||
		[ "${rc_n_ours:-0}" = 0 ]; then
		say "reconcile bench: payments (run ${rc_run:-?}) and the baseline disagree: ${rc_n_ours:-?} and ${rc_n_base:-?} rows, ${rc_only_ours:-?} only payments', ${rc_only_base:-?} only the baseline's, same text: ${rc_same:-?}; the first ones:"
		bench_sql -c "SELECT 'payments' AS side, * FROM (SELECT seq, transaction_id, kind, internal_rows, internal_amount,
			internal_currency, internal_status, internal_occurred_at, gateway_rows, gateway_amount, gateway_currency,
			gateway_status, gateway_occurred_at FROM payments.reconciliation_discrepancies WHERE run_id = ${rc_run:-0}
			EXCEPT ALL SELECT seq, transaction_id, kind, internal_rows, internal_amount, internal_currency, internal_status,
			internal_occurred_at, gateway_rows, gateway_amount, gateway_currency, gateway_status, gateway_occurred_at
			FROM reconcile_sql.discrepancies) AS d ORDER BY seq LIMIT 5" >&2
		BENCH_MISSED=$((BENCH_MISSED + 1))
		rc_ok=0
	else
		echo "reconcile: payments and the baseline write the same $rc_n_ours discrepancy rows"
	fi
	bench_check "(a) payments' run row counts what the baseline found" \
		"SELECT r.internal_rows = $rc_in AND r.gateway_rows = $rc_gw AND r.discrepancies = $rc_n_base
		        AND r.counts = (SELECT jsonb_object_agg(k, (SELECT count(*) FROM reconcile_sql.discrepancies AS d
		                                                   WHERE d.kind = k))
		                        FROM unnest(ARRAY['missing_internal', 'missing_gateway', 'amount_mismatch',
		                                          'currency_mismatch', 'status_mismatch', 'duplicate_internal',
		                                          'duplicate_gateway']) AS k)
		 FROM payments.reconciliation_runs AS r WHERE r.id = ${rc_run:-0}" t || rc_ok=0
fi
echo "reconcile: the baseline's findings: $(bench_sql -At -c "SELECT string_agg(kind || ' ' || n, ', '
	ORDER BY array_position(ARRAY['missing_internal', 'missing_gateway', 'amount_mismatch', 'currency_mismatch',
	                              'status_mismatch', 'duplicate_internal', 'duplicate_gateway'], kind))
	FROM (SELECT kind, count(*) AS n FROM reconcile_sql.discrepancies GROUP BY kind) AS k")"
bench_check "(a) at least 0.9% of the ids of each of the 7 kinds" \
	"SELECT count(*) FILTER (WHERE n >= $RC_N * 0.009)
	 FROM (SELECT kind, count(*) AS n FROM reconcile_sql.discrepancies GROUP BY kind) AS k" 7 || rc_ok=0

# The baseline's plan, node by node: one sort a side (the window count and
# DISTINCT ON share it) into a merge full join, status_map hashed.
rc_plan=$(printf 'SET jit = off;\n%s\n\\set run_id 1\nEXPLAIN (COSTS OFF)\n%s\n' "$RC_VARS" \
	"$(cat "$BENCH_DIR/reconcile_baseline.sql")" | bench_sql -At |
	awk '{ sub(/^ +/, "") } NR == 1 || sub(/^->  /, "") { sub(/ *[("].*/, ""); sub(/ on$/, ""); printf "%s%s", sep, $0; sep = ", " }')
echo "reconcile (a): the baseline's plan: $rc_plan"
bench_check "(a) the baseline's plan: a merge full join of two sorted sides, status_map hashed" \
	"SELECT '$rc_plan' LIKE '%Merge Full Join, Unique, WindowAgg, Sort, Seq Scan on ledger, Unique, WindowAgg, Sort, Seq Scan on gateway_report, Hash, Seq Scan on status_map%'" t
echo "reconcile (a): both with jit = off and the default work_mem, $(bench_sql -At -c "SHOW work_mem")"
# (a) Each timing starts from empty discrepancy tables (untimed TRUNCATE).
rc_base=$(bench_time "baseline: one INSERT ... SELECT (FULL JOIN)" "SET jit = off;
TRUNCATE reconcile_sql.discrepancies;
$RC_VARS
\\set run_id 1
\\i $BENCH_DIR/reconcile_baseline.sql")
if [ "$rc_ok" = 1 ]; then
	rc_ours=$(bench_time "payments.reconcile" "SET jit = off;
TRUNCATE payments.reconciliation_runs, payments.reconciliation_discrepancies;
SELECT $RC_CALL;")
	bench_check "(a) the timed payments runs wrote the same rows" \
		"SELECT count(*) = (SELECT count(*) FROM reconcile_sql.discrepancies)
		 FROM payments.reconciliation_discrepancies" t
	[ -n "$rc_ours" ] && [ -n "$rc_base" ] &&
		bench_speedup "reconcile (a) ${RC_N} ids vs FULL JOIN SQL; time ratio <= 1.3x" "$rc_ours" "$rc_base" 0.77
	[ -n "$rc_ours" ] && [ -n "$rc_base" ] &&
		echo "reconcile (a): payments takes $(awk -v a="$rc_ours" -v b="$rc_base" 'BEGIN { printf "%.2f", a / b }')x the baseline's time (target <= 1.3x)"
fi

# (b) Peak RSS of a backend: reading both tables only, the baseline,
# payments.reconcile.
rc_floor=$(rc_hwm_mb "SELECT (SELECT count(*) FROM payments.ledger) + (SELECT count(*) FROM payments.gateway_report);")
rc_mem_base=$(rc_hwm_mb "$RC_VARS
\\set run_id 2
\\i $BENCH_DIR/reconcile_baseline.sql")
if [ "$rc_ok" = 1 ]; then
	rc_mem=$(rc_hwm_mb "SELECT $RC_CALL;")
	echo "reconcile (b): peak RSS (VmHWM) of a backend, $RC_N ids: payments.reconcile $(rc_mb "$rc_mem"), the baseline $(rc_mb "$rc_mem_base"), reading both tables alone $(rc_mb "$rc_floor") (work_mem $(bench_sql -At -c "SHOW work_mem"), shared_buffers $(bench_sql -At -c "SHOW shared_buffers"))"
fi

if [ "${RECONCILE_BIG:-0}" = 1 ] && [ "$rc_ok" = 1 ]; then
	bench_sql <<'SQL'
CREATE SCHEMA reconcile_big;
CREATE TABLE reconcile_big.ledger (LIKE payments.ledger INCLUDING ALL);
CREATE TABLE reconcile_big.gateway_report (LIKE payments.gateway_report INCLUDING ALL);
SQL
	rc_t0=$SECONDS
	rc_generate "$RC_BIG_N" reconcile_big.ledger reconcile_big.gateway_report
	rc_rows=$(bench_sql -At -F ' ' -c "SELECT
		(SELECT count(*) FROM reconcile_big.ledger WHERE occurred_at >= '$RC_WS' AND occurred_at < '$RC_WE'),
		(SELECT count(*) FROM reconcile_big.gateway_report WHERE occurred_at >= '$RC_WS' AND occurred_at < '$RC_WE')")
	read -r rc_big_in rc_big_gw <<<"$rc_rows"
	echo "reconcile (b): $RC_BIG_N transaction ids: $rc_big_in internal and $rc_big_gw gateway rows in the window; generated in $((SECONDS - rc_t0)) s"
	rc_t0=$(date +%s%N)
	rc_mem_big=$(rc_hwm_mb "SELECT payments.reconcile('$RC_WS', '$RC_WE', 'reconcile_big.ledger',
		'reconcile_big.gateway_report', $RC_TOL);")
	rc_t1=$(date +%s%N)
	echo "reconcile (b): peak RSS (VmHWM) of a backend, payments.reconcile of $RC_BIG_N ids: $(rc_mb "$rc_mem_big"), against $(rc_mb "$rc_mem") for $RC_N ids; that run took $(((rc_t1 - rc_t0) / 1000000)) ms"
	bench_check "(b) peak RSS with $RC_BIG_N ids at most 1.5x that with $RC_N ids" \
		"SELECT ${rc_mem_big%% *} <= 1.5 * ${rc_mem%% *}" t
	bench_check "(b) the $RC_BIG_N-id run found about 10x the $RC_N-id run's discrepancies" \
		"SELECT r.discrepancies BETWEEN 9 * $rc_n_base AND 11 * $rc_n_base
		 FROM payments.reconciliation_runs AS r WHERE r.internal_source = 'reconcile_big.ledger'
		 ORDER BY r.id DESC LIMIT 1" t
	bench_sql -c "SET client_min_messages = warning" -c "DROP SCHEMA reconcile_big CASCADE"
fi

bench_sql -c "ALTER SYSTEM RESET payments.reconcile_time" -c "SELECT pg_reload_conf()" >/dev/null
