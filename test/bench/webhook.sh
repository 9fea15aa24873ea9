# test/bench/webhook.sh: webhook_verify against the same Stripe check
# written with pgcrypto's hmac() and SQL string functions.
#
# Sourced by test/bench/run.  N verifications of one Stripe-Signature header
# over a 1 KB JSON body run inside one statement; the verification time
# varies per row (within the tolerance) so that neither side can be
# evaluated once and reused.  Both sides must find every delivery valid.

WH_N=${WEBHOOK_BENCH_N:-200000}

bench_sql <<'SQL'
CREATE TABLE webhook_bench AS
SELECT secret, body, at, ts,
       'v0=' || encode(sha256(body), 'hex') || ',t=' || ts || ',v1=' ||
       encode(hmac(convert_to(ts || '.', 'UTF8') || body,
                   convert_to(secret, 'UTF8'), 'sha256'), 'hex') AS header
FROM (SELECT 'whsec_bench0123456789abcdefghijklmnop'::text AS secret,
             convert_to('{"id": "evt_bench", "object": "event", "data": "' ||
                        repeat('a', 1024 - 50) || '"}', 'UTF8') AS body,
             timestamptz '2026-01-01 00:00:00+00' AS at,
             extract(epoch FROM timestamptz '2026-01-01 00:00:00+00')::bigint::text AS ts) s;
ALTER TABLE webhook_bench ADD COLUMN headers jsonb;
UPDATE webhook_bench SET headers = jsonb_build_object('Stripe-Signature', header,
    'Content-Type', 'application/json', 'User-Agent', 'Stripe/1.0');

-- The same verification in plain SQL: parse the t and v1 entries, compare
-- every v1 with the HMAC of "<t>.<body>", then the tolerance.
CREATE FUNCTION webhook_bench_sql(secret text, header text, body bytea,
                                  tolerance interval, at timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    WITH entries AS (
        SELECT split_part(e, '=', 1) AS k, substr(e, strpos(e, '=') + 1) AS v
        FROM unnest(string_to_array(header, ',')) AS e),
    t AS (SELECT v AS ts FROM entries WHERE k = 't' AND v ~ '^[0-9]{1,12}$' LIMIT 1),
    mac AS (SELECT encode(hmac(convert_to(t.ts || '.', 'UTF8') || body,
                               convert_to(secret, 'UTF8'), 'sha256'), 'hex') AS hex,
                   t.ts::bigint AS ts
            FROM t)
    SELECT COALESCE(bool_or(lower(e.v) = mac.hex), false)
           AND abs(extract(epoch FROM at)::bigint - min(mac.ts)) <= extract(epoch FROM tolerance)
    FROM mac, entries e
    WHERE e.k = 'v1'
$$;
SQL

wh_ours="SELECT count(*) FILTER (WHERE v.valid) = $WH_N
FROM webhook_bench b, generate_series(1, $WH_N) g,
     LATERAL payments.webhook_verify('stripe', ARRAY[b.secret], b.headers, b.body,
                                     '5 minutes', b.at + (g % 60) * interval '1 second') v"
wh_base="SELECT count(*) FILTER (WHERE webhook_bench_sql(b.secret, b.header, b.body,
                                     '5 minutes', b.at + (g % 60) * interval '1 second')) = $WH_N
FROM webhook_bench b, generate_series(1, $WH_N) g"

# Both sides must agree that every delivery is valid before timing them.
wh_check=$(bench_sql -At -c "$wh_ours" -c "$wh_base" | tr '\n' ' ')
if [ "$wh_check" != "t t " ]; then
	say "webhook bench: a verification failed (got: $wh_check)"
	BENCH_MISSED=$((BENCH_MISSED + 1))
else
	wh_ours_ms=$(bench_time "webhook_verify x $WH_N" "$wh_ours")
	wh_base_ms=$(bench_time "pgcrypto hmac() + SQL x $WH_N" "$wh_base")
	wh_per_s=$(awk -v n="$WH_N" -v ms="$wh_ours_ms" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
	echo "webhook_verify: $wh_per_s verifications per second (Stripe, 1 KB body, one core)"
	bench_speedup "webhook_verify stripe 1KB vs pgcrypto hmac() + SQL" "$wh_ours_ms" "$wh_base_ms" 3
	bench_ratio "webhook_verify per second vs 150,000 target" "$wh_per_s" 150000 1 "verif/s"
fi
bench_sql -c "DROP FUNCTION webhook_bench_sql(text, text, bytea, interval, timestamptz)" \
	-c "DROP TABLE webhook_bench"
