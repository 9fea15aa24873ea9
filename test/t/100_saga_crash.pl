# 100_saga_crash.pl: the server dies in the middle of a saga.  An outcome
# whose transaction had not committed is gone, and saga_next asks for that
# step again (same attempt, so the same idempotency key reaches the
# gateway); a committed one stays, and saga_next moves on.  After the
# restart the saga is recoverable (claimed once), resumes and completes,
# and its log has every committed transition once.  The worker flags a
# saga left without progress.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('saga_crash');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'payments'
payments.worker_naptime = 1
payments.reconcile_time = ''
payments.saga_stale_after = 2
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION payments;
	SELECT payments.saga_start('checkout',
		'[{"name": "reserve"}, {"name": "authorize"}, {"name": "capture"}, {"name": "ship", "compensable": false}]',
		'{"order": 7}', 'order-7');
	SELECT payments.saga_record('order-7', 'reserve', 'succeeded');
});

sub next_action
{
	return $node->safe_psql('postgres',
		"SELECT action || ' ' || step || ' ' || attempt || ' ' || state FROM payments.saga_next('order-7')");
}

is(next_action(), 'run authorize 1 running', 'before the crash: authorize is next');

# an orchestrator records authorize but its transaction has not committed
# when the server dies
my $orchestrator = $node->background_psql('postgres');
$orchestrator->query_safe('BEGIN');
$orchestrator->query_safe("SELECT payments.saga_record('order-7', 'authorize', 'succeeded')");
$node->stop('immediate');
$orchestrator->quit;
$node->start;

is(next_action(), 'run authorize 1 running',
	'the uncommitted outcome is gone: authorize again, same attempt (same key)');
is($node->safe_psql('postgres',
		"SELECT payments.saga_step_key('order-7', step, attempt) FROM payments.saga_next('order-7')"),
	'order-7:authorize:1', 'the same idempotency key for the gateway');

# authorize commits, then the server dies before capture is recorded
$node->safe_psql('postgres', "SELECT payments.saga_record('order-7', 'authorize', 'succeeded')");
$node->stop('immediate');
$node->start;
is(next_action(), 'run capture 1 running', 'a committed outcome survives the crash: capture is next');

# recovery: the saga without progress is claimed by one resumer
$node->safe_psql('postgres', "UPDATE payments.sagas SET updated_at = now() - interval '1 hour'");
is($node->safe_psql('postgres',
		"SELECT saga_id || ' ' || action || ' ' || step FROM payments.saga_recoverable('5 minutes')"),
	'order-7 run capture', 'the stale saga is recoverable, with its next step');
is($node->safe_psql('postgres', "SELECT count(*) FROM payments.saga_recoverable('5 minutes')"),
	'0', 'and claimed for one resumer');

# the worker flags it (no progress for payments.saga_stale_after)
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM payments.saga_events WHERE saga_id = 'order-7' AND event = 'flagged_stale'"),
	'the worker flags the stale saga, once');
ok($node->poll_query_until('postgres',
		"SELECT (last_purge->>'stale_sagas_flagged')::int >= 0 AND stale_since IS NOT NULL FROM payments.worker_status, payments.sagas"),
	'worker_status and the saga show it');

# the resumer finishes the saga
$node->safe_psql('postgres', q{
	SELECT payments.saga_record('order-7', 'capture', 'succeeded');
	SELECT payments.saga_record('order-7', 'ship', 'succeeded');
});
is(next_action(), '', 'done: saga_next has no step');
is($node->safe_psql('postgres', "SELECT state, stale_since IS NULL FROM payments.sagas"),
	'completed|t', 'the saga completed; progress cleared the stale flag');
is($node->safe_psql('postgres', q{
	SELECT string_agg(event || coalesce(':' || step, ''), ',' ORDER BY id)
	FROM payments.saga_events WHERE saga_id = 'order-7'}),
	'started,step_succeeded:reserve,step_succeeded:authorize,flagged_stale,step_succeeded:capture,step_succeeded:ship',
	'the log has every committed transition once, and none of the lost one');

$node->stop;
done_testing();
