# 050_log_hook_order.pl: a library whose emit_log_hook is installed after
# the scrubber's sees raw card numbers, so payments warns about it: the
# postmaster once at start when it is listed after payments in
# shared_preload_libraries, a backend once when one is loaded later (LOAD).
# Listed before payments, there is nothing to warn about.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
plan skip_all => 'payments_test_log_hook is not installed (scripts/test installs it)'
	unless -f "$pkglibdir/payments_test_log_hook.so";

my $warning = qr/hooks the server log before the card-data scrubber/;
my $node = PostgreSQL::Test::Cluster->new('hook_order');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'payments, payments_test_log_hook'");
$node->start;
my $log = slurp_file($node->logfile);
like($log, qr/WARNING:  a library listed after payments in shared_preload_libraries $warning/,
	'listed after payments: the postmaster warns at start');
like($log, qr/HINT:  List payments last in shared_preload_libraries/, 'with a hint');
$node->safe_psql('postgres', "DO \$\$ BEGIN RAISE LOG 'card 4111 1111 1111 1111'; END \$\$");
$log = slurp_file($node->logfile);
is(scalar(() = $log =~ /$warning/g), 1, 'backends do not repeat the postmaster\'s warning');

$node->adjust_conf('postgresql.conf', 'shared_preload_libraries',
	"'payments_test_log_hook, payments'");
$node->restart;
my $start = -s $node->logfile;
$node->safe_psql('postgres', "DO \$\$ BEGIN RAISE LOG 'card 4111 1111 1111 1111'; END \$\$");
$log = slurp_file($node->logfile, $start);
unlike($log, $warning, 'listed before payments: no warning');
unlike($log, qr/4111 1111 1111 1111/, 'and the message was scrubbed');

# A library loaded in a session after the scrubber: one warning, at the
# end of the transaction that met it, and the server keeps going.
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "'payments'");
$node->restart;
$start = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres',
	"LOAD 'payments_test_log_hook'; DO \$\$ BEGIN RAISE LOG 'first'; END \$\$; "
	  . "DO \$\$ BEGIN RAISE LOG 'second'; END \$\$; SELECT 1");
is($ret, 0, 'the session goes on');
like($err, qr/WARNING:  a library loaded after payments $warning/, 'LOAD: the backend warns');
is(scalar(() = $err =~ /$warning/g), 1, 'once');
$log = slurp_file($node->logfile, $start);
like($log, qr/WARNING:  a library loaded after payments $warning/, 'in the server log too');
unlike($log, qr/PANIC|terminated by signal/, 'no crash');

$node->stop;
done_testing();
