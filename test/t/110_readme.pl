# 110_readme.pl: every ```sql block of the README, in order, on a fresh
# database, as a new user would paste them into psql: each must run
# without an error, so that the documentation cannot drift from the code.
# A block that means to show an error says so on a line of its own,
# "-- expect error: <text>"; that block must fail with that text.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $readme = slurp_file(dirname(__FILE__) . '/../../README.md');
my @blocks = $readme =~ /^```sql\n(.*?)^```/msg;
cmp_ok(scalar(@blocks), '>=', 10, 'the README has its SQL blocks');

my $node = PostgreSQL::Test::Cluster->new('readme');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'payments'
payments.reconcile_time = ''
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE readme');

# One psql session for all blocks, so that \gset variables carry over.
my $script = '';
for my $i (0 .. $#blocks)
{
	my $n = $i + 1;
	my ($expect) = $blocks[$i] =~ /^-- expect error: (.+)$/m;
	$script .= "\\echo README block $n\n";
	$script .= $expect ? "\\set ON_ERROR_STOP off\n$blocks[$i]\n\\set ON_ERROR_STOP on\n"
	  : "$blocks[$i]\n";
}
$script .= "\\echo README done\n";
my ($ret, $out, $err) = $node->psql('readme', $script, on_error_stop => 1,
	extra_params => [ '-X' ]);
my ($last) = $out =~ /.*README block (\d+)/s;
is($ret, 0, 'every block runs') or diag("stopped in block $last:\n$err");
like($out, qr/README done/, 'to the end');
for my $i (0 .. $#blocks)
{
	my ($expect) = $blocks[$i] =~ /^-- expect error: (.+)$/m;
	like($err, qr/\Q$expect\E/, 'block ' . ($i + 1) . " fails as it says: $expect") if $expect;
}

$node->stop;
done_testing();
