# 091_worker_standby.pl: a standby has no worker and runs nothing (its
# worker_status says it waits for promotion); once promoted, its worker
# starts and reconciles the day that is due, which the old primary had
# left undone.
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
my ($ret, $out, $err) = $standby->psql('postgres',
	"SELECT payments.reconcile(now() - interval '1 day', now())");
like($err, qr/cannot execute payments\.reconcile\(\) during recovery/,
	'a manual run on the standby is refused clearly');

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
