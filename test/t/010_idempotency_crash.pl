# 010_idempotency_crash.pl: first, 8 pgbench clients race on 200 keys and
# exactly one caller per key gets "started".  Then the owner of an in-flight
# idempotency key dies (its backend is terminated, or the whole server stops
# with an immediate shutdown and recovers).  While the owner's lease runs,
# retries are refused (PM002); once it has run out, exactly one caller takes
# the key over with outcome "resumed" and the last recovery point, and
# nothing committed is lost: completed and failed keys still replay, the
# stored request still guards the key (PM001), an uncommitted begin left
# nothing behind, and both indexes agree with the table after recovery.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('idempotency_crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'payments'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION payments');
$node->safe_psql('postgres', 'CREATE EXTENSION amcheck');

my $req = q('{"amount": 1000, "currency": "EUR"}');

# begin_result: "outcome|recovery_point|response|error" of a begin, or the
# error message when it fails.
sub begin_result
{
	my ($key, $request, $lease) = @_;
	$request //= $req;
	$lease //= '1 minute';
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT outcome, recovery_point, response, error "
		  . "FROM payments.idempotency_begin('$key', $request, lease => '$lease')");
	return $ret == 0 ? $out : $err;
}

# wait_lease_over: wait until the key's lease has run out (a condition, not
# a duration: how long it takes does not matter).
sub wait_lease_over
{
	my ($key) = @_;
	ok( $node->poll_query_until('postgres',
			"SELECT locked_until < clock_timestamp() FROM payments.idempotency_keys "
			  . "WHERE key = '$key'"),
		"$key: the lease runs out");
}

# 0. many concurrent callers (8 clients, 2400 calls over 200 keys): for
# every key exactly one caller gets "started"; the others wait or are
# refused (PM002) or replay the starter's own response.  Even keys are
# completed by their starter, odd ones stay in flight.
$node->safe_psql('postgres', q{
	CREATE TABLE stress_log (key text, outcome text, pid int, response_pid int);
	CREATE FUNCTION stress_try(k int) RETURNS void LANGUAGE plpgsql AS $$
	DECLARE
		r record;
	BEGIN
		SELECT * INTO r FROM payments.idempotency_begin('stress-' || k,
			jsonb_build_object('k', k));
		IF r.outcome = 'started' AND k % 2 = 0 THEN
			PERFORM payments.idempotency_complete('stress-' || k,
				jsonb_build_object('pid', pg_backend_pid()));
		END IF;
		INSERT INTO stress_log VALUES ('stress-' || k, r.outcome,
			pg_backend_pid(), (r.response ->> 'pid')::int);
	EXCEPTION WHEN SQLSTATE 'PM002' THEN
		INSERT INTO stress_log VALUES ('stress-' || k, 'PM002', pg_backend_pid(), NULL);
	END $$;
});
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=300',
	0, [qr{processed: 2400/2400}], [],
	'stress: 8 clients race on 200 keys',
	{ 'idem_stress' => "\\set k random(1, 200)\nSELECT stress_try(:k);\n" });
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM stress_log WHERE outcome NOT IN ('started', 'completed', 'PM002')
	UNION ALL
	SELECT count(*) FROM (SELECT key FROM stress_log GROUP BY key
		HAVING count(*) FILTER (WHERE outcome = 'started') <> 1) AS k
	UNION ALL
	SELECT count(*) FROM stress_log c JOIN stress_log s
		ON s.key = c.key AND s.outcome = 'started'
	WHERE c.outcome = 'completed' AND c.response_pid IS DISTINCT FROM s.pid
	UNION ALL
	SELECT count(*) FROM stress_log
	WHERE outcome = 'completed' AND substr(key, 8)::int % 2 = 1
}), "0\n0\n0\n0",
	'stress: exactly one "started" per key; replays return the starter\'s response');
is($node->safe_psql('postgres', q{
	SELECT count(DISTINCT key) = (SELECT count(*) FROM payments.idempotency_keys
		WHERE key LIKE 'stress-%') FROM stress_log}),
	't', 'stress: one row per key used');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE outcome = 'PM002') > 0
		AND count(*) FILTER (WHERE outcome = 'completed') > 0 FROM stress_log}),
	't', 'stress: both refusals and replays happened');
$node->safe_psql('postgres',
	"DELETE FROM payments.idempotency_keys WHERE key LIKE 'stress-%'");

# 1. pg_terminate_backend: the owner began, checkpointed and is working
# (its session is open) when its backend is killed.
my $owner = $node->background_psql('postgres');
$owner->query_safe(
	"SELECT outcome FROM payments.idempotency_begin('kill-1', $req, lease => '5 seconds')");
$owner->query_safe("SELECT payments.idempotency_checkpoint('kill-1', 'card-charged')");
my $pid = $owner->query_safe('SELECT pg_backend_pid()');
chomp $pid;

like(begin_result('kill-1'), qr/ERROR:  idempotency key "kill-1" in scope "default" is in flight/,
	'kill: a retry while the owner holds the lease is refused (PM002)');
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
	't', 'kill: the owner backend is terminated');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'kill: the owner backend is gone');
eval { $owner->quit; };

like(begin_result('kill-1', q('{"amount": 1}')),
	qr/ERROR:  idempotency key "kill-1" in scope "default" was already used with a different request/,
	'kill: a different request under the key is still PM001');
wait_lease_over('kill-1');
is(begin_result('kill-1', undef, '1 hour'), 'resumed|card-charged||',
	'kill: after the lease, a retry takes over at the last recovery point');
like(begin_result('kill-1'), qr/is in flight/,
	'kill: exactly one caller took over; the next is refused');
$node->safe_psql('postgres',
	q(SELECT payments.idempotency_complete('kill-1', '{"charge": "ch_kill"}')));
is(begin_result('kill-1'), 'completed|card-charged|{"charge": "ch_kill"}|',
	'kill: the resumer completes and retries replay its response');

# 2. pg_terminate_backend of an owner inside its transaction: its begin
# never committed, so the key was never used.
$owner = $node->background_psql('postgres');
$owner->query_safe('BEGIN');
$owner->query_safe(
	"SELECT outcome FROM payments.idempotency_begin('kill-2', $req, lease => '5 seconds')");
$pid = $owner->query_safe('SELECT pg_backend_pid()');
chomp $pid;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'kill in transaction: the owner backend is gone');
eval { $owner->quit; };
is(begin_result('kill-2'), 'started|||',
	'kill in transaction: the key starts afresh (the begin rolled back)');

# 3. immediate shutdown: keys in every state, many new keys through begin's
# direct insertion path, and an uncommitted begin, then crash recovery.
$node->safe_psql('postgres', qq(
	SELECT outcome FROM payments.idempotency_begin('crash-flight', $req, lease => '5 seconds');
	SELECT payments.idempotency_checkpoint('crash-flight', 'authorized');
	SELECT outcome FROM payments.idempotency_begin('crash-done', $req);
	SELECT payments.idempotency_complete('crash-done', '{"charge": "ch_done"}');
	SELECT outcome FROM payments.idempotency_begin('crash-failed', $req);
	SELECT payments.idempotency_fail('crash-failed', '{"code": "card_declined", "amount": 10.00}', false);
	SELECT count(*) FROM generate_series(1, 5000) g,
		payments.idempotency_begin('bulk-' || g, jsonb_build_object('n', g));
));
$owner = $node->background_psql('postgres');
$owner->query_safe('BEGIN');
$owner->query_safe(
	"SELECT outcome FROM payments.idempotency_begin('crash-uncommitted', $req)");

$node->stop('immediate');
eval { $owner->quit; };
$node->start;

is(begin_result('crash-done'), 'completed||{"charge": "ch_done"}|',
	'crash: a completed key replays its response after recovery');
is(begin_result('crash-failed'), 'failed|||{"code": "card_declined", "amount": 10.00}',
	'crash: a failed key replays its exact error after recovery');
like(begin_result('crash-flight', q('{"amount": 2}')), qr/was already used with a different request/,
	'crash: the in-flight key still guards its request (PM001)');
is(begin_result('crash-uncommitted'), 'started|||',
	'crash: an uncommitted begin left nothing behind');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM payments.idempotency_keys WHERE key LIKE 'bulk-%'"),
	'5000', 'crash: every committed new key survived');
is($node->safe_psql('postgres',
		"SELECT bt_index_check('payments.idempotency_keys_pkey', true), "
		  . "bt_index_check('payments.idempotency_keys_expires_at_idx', true)"),
	'|', 'crash: both indexes agree with the table after recovery');

wait_lease_over('crash-flight');
is(begin_result('crash-flight', undef, '1 hour'), 'resumed|authorized||',
	'crash: after the lease, a retry takes over at the last recovery point');
like(begin_result('crash-flight'), qr/is in flight/,
	'crash: exactly one caller took over');
$node->safe_psql('postgres',
	q(SELECT payments.idempotency_complete('crash-flight', '{"charge": "ch_flight"}')));
is(begin_result('crash-flight'), 'completed|authorized|{"charge": "ch_flight"}|',
	'crash: the resumer completes and retries replay its response');
is($node->safe_psql('postgres',
		"SELECT value FROM payments.stats WHERE name = 'idempotency_resumed'"),
	'1', 'crash: the takeover is counted (counters restart with the server)');

$node->stop;
unlike(slurp_file($node->logfile), qr/PANIC|TRAP|was terminated by signal/,
	'no crash of the server other than the immediate stop');
done_testing();
