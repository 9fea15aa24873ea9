# 060_log_panic.pl: a PANIC raised inside a critical section, with a card
# number in its message and in the statement, is written to the server log
# masked: the scrubber allocates only where a critical section allows it
# (an assert-enabled server would stop at a TRAP otherwise), and the
# server restarts as after any PANIC.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
plan skip_all => 'payments_test_log_hook is not installed (scripts/test installs it)'
	unless -f "$pkglibdir/payments_test_log_hook.so";

my $node = PostgreSQL::Test::Cluster->new('log_panic');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'payments'
restart_after_crash = on
));
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION payments;
	CREATE FUNCTION panic_in_critical_section(text) RETURNS void
		AS 'payments_test_log_hook', 'payments_test_panic' LANGUAGE c STRICT});

my $start = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT panic_in_critical_section('declined card 4111 1111 1111 1111')});
isnt($ret, 0, 'the call does not return');
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server is back after the PANIC');

my $log = slurp_file($node->logfile, $start);
like($log, qr/PANIC:  declined card \*{12}1111/, 'the PANIC message is masked');
like($log, qr/STATEMENT:  SELECT panic_in_critical_section\('declined card \*{12}1111'\)/,
	'its statement is masked');
unlike($log, qr/4111 1111/, 'the card number is not in the log');
unlike($log, qr/TRAP:/, 'no assertion failed');
like($log, qr/all server processes terminated; reinitializing/, 'the server reinitialised');

$node->stop;
done_testing();
