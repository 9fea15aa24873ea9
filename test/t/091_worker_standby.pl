# 091_worker_standby.pl: a standby has no worker and runs nothing (its
# worker_status says it waits for promotion); every function that writes
# is refused there with its name, the reason and a hint about the primary;
# once promoted, its worker starts and reconciles the day that is due,
# which the old primary had left undone.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('worker_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'payments'
payments.database = 'postgres'
payments.worker_naptime = 1
payments.reconcile_time = ''
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION payments;
	INSERT INTO payments.ledger VALUES
		('a', 10, 'USD', 'captured', date_trunc('day', now()) - interval '12 hours');
});
$primary->backup('backup');

my $standby = PostgreSQL::Test::Cluster->new('worker_standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
# on the standby the schedule is on: only recovery keeps it idle
$standby->append_conf('postgresql.conf', "payments.reconcile_time = '00:00'");
$standby->start;
$primary->wait_for_catchup($standby);

# the standby stays idle for several of its naptimes
sleep 3;
is($standby->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'payments worker'"),
	'0', 'no worker on the standby');
is($standby->safe_psql('postgres', 'SELECT state FROM payments.worker_status'),
	'waiting for promotion', 'worker_status says why');
is($standby->safe_psql('postgres', 'SELECT payments.worker_run_now()'), 'f',
	'worker_run_now on a standby wakes nothing');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM payments.reconciliation_runs'),
	'0', 'no run on the standby');
# every function that writes says, on a standby, which function and why,
# with a hint about the primary (not an internal "cannot execute UPDATE")
$primary->safe_psql('postgres', q{
	INSERT INTO payments.webhook_endpoints (name, scheme) VALUES ('gh', 'github');
	SELECT payments.idempotency_begin('k1', '{}');
	SELECT payments.saga_start('s', '[{"name": "a"}]', saga_id => 's1');
});
$primary->wait_for_catchup($standby);
for my $call (
	"payments.reconcile(now() - interval '1 day', now())",
	"payments.idempotency_begin('k2', '{}')",
	"payments.idempotency_complete('k1', '{}')",
	"payments.webhook_receive('gh', '{}', '\\x')",
	"payments.saga_record('s1', 'a', 'succeeded')",
	"payments.fraud_evaluate('{}')")
{
	my ($ret, $out, $err) = $standby->psql('postgres', "SELECT $call");
	(my $name = $call) =~ s/\(.*//;
	like($err, qr/ERROR:  cannot call \Q$name\E.* on a standby server\n.*\n.*HINT:  Call it on the primary/,
		"$name on the standby: named, explained, pointed at the primary");
}
# what only reads answers on the standby
is($standby->safe_psql('postgres', "SELECT action FROM payments.saga_next('s1')"), 'run',
	'saga_next answers on the standby');

$standby->promote;
ok($standby->poll_query_until('postgres',
		"SELECT count(*) FROM payments.reconciliation_runs WHERE triggered_by = 'worker'", '1'),
	'after promotion the worker reconciles the due day');
is($standby->safe_psql('postgres', q{
	SELECT state <> 'waiting for promotion' AND pid IS NOT NULL FROM payments.worker_status}),
	't', 'worker_status shows the worker');

$standby->stop;
$primary->stop;
done_testing();
