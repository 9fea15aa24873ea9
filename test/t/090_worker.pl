# 090_worker.pl: the background worker.  A run scheduled a few seconds away
# happens, once, for the previous day; a restart does not run it again;
# SIGHUP moves and disables the schedule; worker_run_now runs the due day
# at once; after downtime the missed days are caught up, each once; the
# purges remove expired idempotency keys; DROP DATABASE of another database
# is not blocked; SIGTERM ends the worker cleanly and it comes back; a new
# payments.database moves it on reload; a
# crash in the middle of a run leaves no half run, and the restarted worker
# runs the day once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;

# The schedule is a time of day: keep clear of midnight UTC, where
# "yesterday" would change under the test.
my ($h, $m, $s) = (gmtime(time))[2, 1, 0];
my $to_midnight = 86400 - ($h * 3600 + $m * 60 + $s);
sleep($to_midnight + 5) if $to_midnight < 120;

# a time of day $secs seconds from now, in UTC
sub time_in
{
	my ($secs) = @_;
	my @t = gmtime(time + $secs);
	return sprintf('%02d:%02d:%02d', $t[2], $t[1], $t[0]);
}

$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'payments'
payments.database = 'postgres'
payments.timezone = 'UTC'
payments.worker_naptime = 1
restart_after_crash = on
payments.reconcile_time = '@{[ time_in(8) ]}'
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION payments;
	INSERT INTO payments.ledger VALUES
		('a', 10, 'USD', 'captured', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '12 hours'),
		('b', 20, 'USD', 'captured', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '11 hours');
	INSERT INTO payments.gateway_report VALUES
		('a', 10, 'USD', 'captured', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '12 hours');
});

my $yesterday = q{(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '1 day') AT TIME ZONE 'UTC'};
my $worker_runs = q{SELECT count(*) FROM payments.reconciliation_runs WHERE triggered_by = 'worker'};

# pass_done: wait until the worker has finished a pass that began after now
sub pass_done
{
	my $t0 = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
	return $node->poll_query_until('postgres',
		"SELECT last_purge_at > '$t0' FROM payments.worker_status");
}

# 1. before its time, nothing runs (no day before the worker was set up)
ok(pass_done(), 'the worker makes passes');
is($node->safe_psql('postgres', $worker_runs), '0', 'no run before the scheduled time');
like($node->safe_psql('postgres',
		"SELECT backend_type || ' ' || state FROM pg_stat_activity WHERE backend_type = 'payments worker'"),
	qr/^payments worker (idle|active)$/, 'the worker shows in pg_stat_activity');

# 2. at the scheduled time, one run of the previous day, by the worker
ok($node->poll_query_until('postgres', "$worker_runs AND window_start = $yesterday", '1'),
	'the scheduled run happens for the previous day');
is($node->safe_psql('postgres', q{
	SELECT summary || ' ' || (window_end - window_start)
	FROM payments.reconciliation_runs WHERE triggered_by = 'worker'}),
	'1/2 matched, 1 discrepancies: 1 missing_gateway 1 day', 'the run reconciled the day');
is($node->safe_psql('postgres', q{
	SELECT last_run_id = (SELECT max(id) FROM payments.reconciliation_runs)
	   AND next_run_at > now() + interval '23 hours' AND last_error IS NULL
	FROM payments.worker_status}), 't', 'worker_status shows the run and the next one');

# 3. a restart does not run the day again
$node->restart;
ok(pass_done(), 'the worker is back after a restart');
is($node->safe_psql('postgres', $worker_runs), '1', 'no second run of the same day after a restart');

# 4. SIGHUP moves the schedule, and an empty time disables it
$node->safe_psql('postgres', "ALTER SYSTEM SET payments.reconcile_time = '03:15'");
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT to_char(next_run_at AT TIME ZONE 'UTC', 'HH24:MI') FROM payments.worker_status",
		'03:15'), 'SIGHUP moves the next run');
$node->safe_psql('postgres', "ALTER SYSTEM SET payments.reconcile_time = ''");
$node->reload;
ok($node->poll_query_until('postgres',
		'SELECT next_run_at IS NULL FROM payments.worker_status'), 'an empty time disables the schedule');

# 5. worker_run_now runs the due day at once, schedule or not
$node->safe_psql('postgres', "DELETE FROM payments.reconciliation_runs WHERE triggered_by = 'worker'");
ok(pass_done(), 'a pass with the schedule disabled');
is($node->safe_psql('postgres', $worker_runs), '0', 'a disabled schedule runs nothing');
is($node->safe_psql('postgres', 'SELECT payments.worker_run_now()'), 't', 'worker_run_now wakes the worker');
ok($node->poll_query_until('postgres', "$worker_runs AND window_start = $yesterday", '1'),
	'worker_run_now reconciles the previous day');
$node->safe_psql('postgres', 'SELECT payments.worker_run_now()');
ok(pass_done(), 'another pass');
is($node->safe_psql('postgres', $worker_runs), '1', 'worker_run_now does not run a day twice');

# 6. catch-up after downtime: the worker last ran four days ago; the days
# since are run once each, oldest first
$node->safe_psql('postgres', qq{
	DELETE FROM payments.reconciliation_runs WHERE triggered_by = 'worker';
	INSERT INTO payments.reconciliation_runs (window_start, window_end, internal_source,
		gateway_source, tolerance, triggered_by, run_by, started_at, finished_at)
	VALUES ($yesterday - interval '3 days', $yesterday - interval '2 days', 'payments.ledger',
		'payments.gateway_report', 0, 'worker', current_user, now(), now());
});
$node->safe_psql('postgres', "ALTER SYSTEM SET payments.reconcile_time = '00:00'");
$node->stop;
$node->start;
ok($node->poll_query_until('postgres', $worker_runs, '4'), 'the missed days are caught up');
is($node->safe_psql('postgres', qq{
	SELECT string_agg(to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD'), ',' ORDER BY id)
	FROM payments.reconciliation_runs WHERE triggered_by = 'worker'}),
	$node->safe_psql('postgres', qq{
	SELECT string_agg(to_char(d, 'YYYY-MM-DD'), ',' ORDER BY d)
	FROM generate_series(($yesterday - interval '3 days') AT TIME ZONE 'UTC',
	                     $yesterday AT TIME ZONE 'UTC', interval '1 day') AS d}),
	'each missed day once, in order');
ok(pass_done(), 'another pass');
is($node->safe_psql('postgres', $worker_runs), '4', 'no day twice after the catch-up');

# 7. the purge removes expired idempotency keys and says so
$node->safe_psql('postgres', q{
	SELECT payments.idempotency_begin('k' || g, '{}', ttl => '1 millisecond') FROM generate_series(1, 3) g;
	SELECT payments.idempotency_complete('k' || g, '{}') FROM generate_series(1, 3) g;
});
ok($node->poll_query_until('postgres', 'SELECT count(*) FROM payments.idempotency_keys', '0'),
	'expired keys are purged');
ok($node->poll_query_until('postgres',
		"SELECT (last_purge->>'idempotency_keys')::int >= 0 AND last_purge ? 'webhook_rows' FROM payments.worker_status"),
	'worker_status shows the last purge');

# 8. another database can be dropped while the worker runs
$node->safe_psql('postgres', 'CREATE DATABASE other');
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE other', timeout => 30);
is($ret, 0, 'DROP DATABASE of another database is not blocked');

# 9. SIGTERM: the worker exits cleanly and the postmaster starts it again
my $pid = $node->safe_psql('postgres', 'SELECT pid FROM payments.worker_status');
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres',
		"SELECT pid IS NOT NULL AND pid <> $pid FROM payments.worker_status"),
	'the worker is back after SIGTERM');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/terminating background worker "payments worker" due to administrator command/,
	'SIGTERM ends the worker');
unlike($log, qr/PANIC|server process .* was terminated by signal/, 'without a crash');

# 10. a new payments.database: the worker reconnects there (where the
# extension is not created, so it waits), and comes back
$node->safe_psql('postgres', 'CREATE DATABASE shop2');
$node->safe_psql('postgres', "ALTER SYSTEM SET payments.database = 'shop2'");
$node->reload;
ok($node->poll_query_until('postgres', q{
		SELECT database = 'shop2' AND state = 'waiting for CREATE EXTENSION payments'
		FROM payments.worker_status}), 'a new payments.database moves the worker there');
# it looks for the extension every 5 seconds, whatever the naptime: no
# wake-up reaches it from the creating transaction
$node->safe_psql('postgres', 'ALTER SYSTEM SET payments.worker_naptime = 3600');
$node->reload;
$node->safe_psql('shop2', 'CREATE EXTENSION payments');
ok($node->poll_query_until('postgres', q{
		SELECT database = 'shop2' AND state = 'idle' FROM payments.worker_status}),
	'with a long naptime, it finds CREATE EXTENSION in its database');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET payments.worker_naptime');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET payments.database');
$node->reload;
ok($node->poll_query_until('postgres', q{
		SELECT state = 'idle' FROM payments.worker_status WHERE database = 'postgres'}),
	'and back');

# 11. a crash in the middle of a run: nothing of it stays, and the day is
# run once after the restart
$node->safe_psql('postgres', q{
	INSERT INTO payments.ledger
	SELECT 'bulk' || g, g, 'USD', 'captured',
	       (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '1 day') AT TIME ZONE 'UTC' + g * interval '1 ms'
	FROM generate_series(1, 1000000) g;
	DELETE FROM payments.reconciliation_runs WHERE triggered_by = 'worker' AND id = (SELECT max(id) FROM payments.reconciliation_runs);
});
$node->safe_psql('postgres', 'SELECT payments.worker_run_now()');
ok($node->poll_query_until('postgres',
		"SELECT state = 'reconciling' FROM payments.worker_status"), 'the worker is reconciling');
$pid = $node->safe_psql('postgres', 'SELECT pid FROM payments.worker_status');
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
		"SELECT pid IS NOT NULL AND pid <> $pid FROM payments.worker_status"),
	'the worker is restarted after the crash');
ok($node->poll_query_until('postgres', $worker_runs, '4'), 'the interrupted day is run after the crash');
is($node->safe_psql('postgres',
		'SELECT count(*) FROM payments.reconciliation_runs WHERE finished_at IS NULL'),
	'0', 'no half run is visible');
is($node->safe_psql('postgres', qq{
	SELECT internal_rows FROM payments.reconciliation_runs
	WHERE triggered_by = 'worker' AND window_start = $yesterday}),
	'1000002', 'the day was reconciled in full');
ok(pass_done(), 'another pass');
is($node->safe_psql('postgres', $worker_runs), '4', 'and only once');

$node->stop;
done_testing();
