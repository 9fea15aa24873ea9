# 001_preload.pl: the server starts with the library preloaded, counts in
# shared memory, restarts cleanly; without preloading everything still
# answers; the install script refuses to run outside CREATE EXTENSION.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
# No reconciliation by the worker: after 02:00 it would reconcile the
# previous day as soon as the extension exists, and count the run.
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'payments'
payments.reconcile_time = ''");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION payments');
is($node->safe_psql('postgres',
		"SELECT count(*) > 0 AND bool_and(value = 0) FROM payments.stats"),
	't', 'preloaded: counters exist and start at zero');
is($node->safe_psql('postgres', 'SELECT payments.preloaded()'),
	't', 'preloaded: payments.preloaded() says so');
is($node->safe_psql('postgres', 'SELECT count(*) FROM payments.error_codes'),
	$node->safe_psql('postgres',
		"SELECT count(*) FROM payments.error_codes WHERE sqlstate LIKE 'PM%'"),
	'error catalog answers');

$node->restart;
is($node->safe_psql('postgres',
		"SELECT count(*) > 0 FROM payments.stats"),
	't', 'counters are back after a restart');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) > 0 FROM payments.stats"),
	't', 'server recovers from an immediate stop with the library preloaded');
unlike(slurp_file($node->logfile), qr/PANIC|server process .* was terminated by signal/,
	'no crash in the server log');

# Without preloading the SQL API still works; the counters view is empty.
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM payments.stats'),
	'0', 'not preloaded: payments.stats answers with no rows');
ok($node->safe_psql('postgres', 'SELECT count(*) FROM payments.error_codes') > 0,
	'not preloaded: error catalog answers');
my ($ret, $out, $err) = $node->psql('postgres', "LOAD 'payments'");
is($ret, 0, 'not preloaded: LOAD in a session works');
is($node->safe_psql('postgres', 'SELECT payments.preloaded()'),
	'f', 'not preloaded: payments.preloaded() says so');
is($node->safe_psql('postgres',
		"LOAD 'payments'; SET payments.redact_server_log = on; SHOW payments.redact_server_log"),
	'off', 'not preloaded: SHOW payments.redact_server_log says off, as nothing is scrubbed');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
($ret, $out, $err) = $node->psql('fresh', 'CREATE EXTENSION payments');
is($ret, 0, 'not preloaded: CREATE EXTENSION works');
like($err, qr/WARNING:  payments is not in shared_preload_libraries.*\n.*HINT:  Add payments to shared_preload_libraries/,
	'not preloaded: CREATE EXTENSION warns with a hint');
like($err, qr/the server-log scrubber is off/, 'not preloaded: the warning says the log scrubber is off');

# A schema of that name already there: CREATE EXTENSION refuses to take it
# over (the README says what to do).
$node->safe_psql('postgres', 'CREATE DATABASE taken');
$node->safe_psql('taken', 'CREATE SCHEMA payments; CREATE TABLE payments.orders (id int)');
($ret, $out, $err) = $node->psql('taken', 'CREATE EXTENSION payments');
like($err, qr/schema "payments" already exists/, 'an existing payments schema is refused');
$node->safe_psql('taken', 'ALTER SCHEMA payments RENAME TO shop_payments; CREATE EXTENSION payments');
is($node->safe_psql('taken', 'SELECT count(*) FROM shop_payments.orders'), '0',
	'after renaming it, the extension installs and the old schema is intact');

# The install script run by hand stops at its guard.
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my ($script) = grep { !/--.*--/ } glob("$sharedir/extension/payments--*.sql");
$node->safe_psql('postgres', 'CREATE DATABASE guard');
($ret, $out, $err) = $node->psql('guard', undef,
	extra_params => [ '-f', $script ]);
like($out . $err, qr/Use "CREATE EXTENSION payments" to load this file/,
	'install script refuses to run outside CREATE EXTENSION');
is($node->safe_psql('guard',
		"SELECT count(*) FROM pg_namespace WHERE nspname = 'payments'"),
	'0', 'the guard created nothing');

$node->stop;
done_testing();
