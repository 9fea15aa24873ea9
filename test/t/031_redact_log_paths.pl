# 031_redact_log_paths.pl: card data reaches none of the server log's
# destinations (stderr with a log_line_prefix of every field, csvlog,
# jsonlog) by any of the ways issue 11 found: values PostgreSQL cuts short
# ("Failing row contains (...)", COPY's CONTEXT, bind parameters cut by
# log_parameter_max_length[_on_error]), node tree dumps of debug_print_*,
# and application_name.  Each scenario uses its own PAN, and the check is
# that no 7 consecutive digits of it are anywhere in any log file.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('redact_log_paths');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'payments'
logging_collector = on
log_destination = 'stderr,csvlog,jsonlog'
log_directory = 'log'
log_filename = 'pm.log'
log_line_prefix = '%m [%p] app=%a user=%u db=%d %q'
log_statement = 'all'
log_min_error_statement = 'error'
));
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION payments;
CREATE TABLE r1 (id int, note text NOT NULL);
CREATE TABLE r2 (n int);
});

# luhn_pan: the digits given and the check digit that makes them pass Luhn.
sub luhn_pan
{
	my ($body) = @_;
	my $sum = 0;
	my @d = reverse split //, $body . '0';
	for my $i (0 .. $#d)
	{
		my $x = $d[$i];
		if ($i % 2) { $x *= 2; $x -= 9 if $x > 9; }
		$sum += $x;
	}
	return $body . ((10 - $sum % 10) % 10);
}
my %pan = (
	failing_row => luhn_pan('453914880343646'),
	copy => luhn_pan('542523343010990'),
	param_error => luhn_pan('601198765432101'),
	param_statement => luhn_pan('356600202036123'),
	node_dump => luhn_pan('491761000000123'),
	app_name => luhn_pan('222300312200987'),
	app_name_csv => luhn_pan('510510510510123'),
);

# A value longer than 64 bytes is cut in "Failing row contains (...)".
my ($ret, $out, $err) = $node->psql('postgres',
	"CREATE TABLE r3 (a text, b text NOT NULL); INSERT INTO r3 VALUES ('" . ('z' x 49)
	  . "$pan{failing_row}', NULL)");
like($err, qr/Failing row contains \(z+\*+\.\.\., null\)/,
	'a NOT NULL violation echoes the row, its cut value masked');

# COPY's CONTEXT quotes the line, cut at 100 bytes.
($ret, $out, $err) = $node->psql('postgres',
	"COPY r2 FROM STDIN;\n1\t" . ('w' x 84) . "$pan{copy}\n\\.\n");
like($err, qr/CONTEXT:  COPY r2, line 1: "1\tw+\*+\.\.\."/,
	'COPY quotes the failing line, cut and masked');

# pgbench_param: run SQL once with the parameter :p = VALUE, extended
# protocol; it must fail or succeed as ok says.
sub pgbench_param
{
	my ($value, $sql, $ok, $name) = @_;
	my $script = $node->basedir . '/param.sql';
	open(my $fh, '>', $script) or die;
	print $fh "\\set p $value\n$sql\n";
	close $fh;
	my @cmd = ('pgbench', '-n', '-M', 'extended', '-t', '1', '-f', $script,
		'-p', $node->port, '-h', $node->host, 'postgres');
	$ok ? $node->command_ok(\@cmd, $name) : $node->command_fails(\@cmd, $name);
}

# Bind parameters, cut by log_parameter_max_length_on_error (any user may
# set it) and log_parameter_max_length, sent by pgbench -M extended.
pgbench_param($pan{param_error}, 'SELECT (:p)::text::int;', 0,
	'an extended-protocol statement fails with its parameter');
$node->append_conf('postgresql.conf', "log_parameter_max_length_on_error = 15\nlog_parameter_max_length = 15\nlog_min_duration_statement = 0\n");
$node->reload;
pgbench_param($pan{param_error}, 'SELECT (:p)::text::int;', 0,
	'... and again with parameters cut at 15 bytes');
pgbench_param($pan{param_statement}, 'SELECT (:p)::text;', 1,
	'a logged statement with its parameter cut at 15 bytes');

# Node tree dumps: any user may turn them on.
$node->safe_psql('postgres', "SET debug_print_parse = on; SET debug_print_plan = on;
SET debug_print_rewritten = on; SELECT '$pan{node_dump}'::text");
$node->safe_psql('postgres', "SET debug_pretty_print = off; SET debug_print_parse = on;
SELECT 'x$pan{node_dump}'::text");

# application_name: in the prefix (%a), csvlog and jsonlog, and masked
# where it is kept, so SHOW and pg_stat_activity show the mask.
my $shown = $node->safe_psql('postgres', "SET application_name = 'card $pan{app_name}';
SELECT 1/1; SHOW application_name");
is($shown, "1\ncard ************" . substr($pan{app_name}, -4),
	'SHOW application_name gives the masked name once a message was logged');
$node->psql('postgres', "SELECT 1/0", extra_params => [ '-v',
	"ON_ERROR_STOP=0" ], connstr => $node->connstr('postgres')
	  . " application_name='pay $pan{app_name_csv}'");
my $activity = $node->safe_psql('postgres', "SET application_name = 'card $pan{app_name}';
SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()");
unlike($activity, qr/\Q$pan{app_name}\E/, 'pg_stat_activity shows the masked name');

# Every destination, every scenario: no 7 consecutive digits of a PAN.
$node->safe_psql('postgres', 'SELECT pg_rotate_logfile()');
sleep 1;
my %logs;
for my $ext ('log', 'csv', 'json')
{
	my $file = $node->data_dir . "/log/pm.$ext";
	ok(-s $file, "the $ext log was written");
	$logs{$ext} = slurp_file($file);
}
like($logs{log}, qr/Failing row contains \(z+\*+\.\.\., null\)/, 'a cut value was logged, masked');
like($logs{log}, qr/COPY r2, line 1: "1\tw+\*+\.\.\."/, 'the COPY line was logged, masked');
like($logs{log}, qr/\$1 = '\*+\.\.\.'/, 'a cut parameter was logged, masked');
like($logs{log}, qr/:constvalue \d+ \[ [*\s-]+\]/, 'a node dump was logged with its constant masked');
unlike($logs{log}, qr/:constvalue \d+ \[[\s\d-]*\d/, 'no constant keeps a byte in any dump');
like($logs{csv}, qr/card \*{12}\d{4}/, 'csvlog carries the masked application_name');
like($logs{json}, qr/"application_name":"card \*{12}\d{4}"/, 'jsonlog carries the masked application_name');
like($logs{log}, qr/app=pay \*{12}\d{4}/, 'a connection-time application_name is masked in the prefix');
for my $scenario (sort keys %pan)
{
	my $p = $pan{$scenario};
	for my $ext (sort keys %logs)
	{
		my $leak;
		for my $i (0 .. length($p) - 7)
		{
			my $part = substr($p, $i, 7);
			$leak = $part if index($logs{$ext}, $part) >= 0;
		}
		ok(!defined $leak, "$scenario: no 7 digits of its PAN in the $ext log"
			  . (defined $leak ? " (found $leak)" : ''));
	}
}

done_testing();
