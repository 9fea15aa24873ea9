# 030_redact_log.pl: with the library preloaded, card data never reaches the
# server log: not in an error's message, its DETAIL (a unique violation
# echoes the key), HINT, CONTEXT, internal query, nor in the logged
# statement; payments.redact_server_log = off (superuser only) shows that
# the same messages would have carried the numbers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('redact_log');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'payments'
log_statement = 'all'
log_min_error_statement = 'debug5'
log_error_verbosity = 'verbose'
log_min_messages = 'info'
));
$node->start;

$node->safe_psql('postgres', qq(
CREATE EXTENSION payments;
CREATE ROLE app LOGIN;
CREATE TABLE cards (pan text PRIMARY KEY);
GRANT ALL ON cards TO app;
INSERT INTO cards VALUES ('4111111111111111');
CREATE FUNCTION charge(card text) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
    RAISE NOTICE 'charging card %', card USING HINT = 'card ' || card;
    EXECUTE format('SELECT %L::int', card);
    RETURN 1;
END \$\$;
));
my $log_start = -s $node->logfile;

# Each statement fails, or logs, with a card number in some field.
my @pans = ('4111111111111111', '5555555555554444', '378282246310005',
	'6011111111111117', '4242424242424242');
my ($ret, $out, $err);
($ret, $out, $err) = $node->psql('postgres',
	"INSERT INTO cards VALUES ('4111111111111111')", extra_params => [ '-U', 'app' ]);
like($err, qr/duplicate key value violates unique constraint/, 'unique violation raised');
like($err, qr/\Q(pan)=(************1111)\E/, 'the client sees the key masked too');
($ret, $out, $err) = $node->psql('postgres', "SELECT '5555 5555 5555 4444'::int");
like($err, qr/invalid input syntax for type integer: "\*{12}4444"/, 'message masked');
($ret, $out, $err) = $node->psql('postgres', "SELECT charge('378282246310005')");
like($err, qr/QUERY:  SELECT '\*{11}0005'::int/, 'error inside PL/pgSQL: internal query masked');
($ret, $out, $err) = $node->psql('postgres',
	"DO \$\$ BEGIN RAISE LOG 'track %', ';6011111111111117=25121010000000000?'; END \$\$");
($ret, $out, $err) = $node->psql('postgres',
	"DO \$\$ BEGIN RAISE EXCEPTION 'declined' USING DETAIL = 'card 4242-4242-4242-4242 cvv: 321'; END \$\$");
like($err, qr/DETAIL:  card \*{12}4242 cvv: \[REDACTED_CVV\]/, 'detail masked for the client');

my $log = slurp_file($node->logfile, $log_start);
like($log, qr/duplicate key value violates unique constraint/, 'the unique violation was logged');
like($log, qr/STATEMENT:  INSERT INTO cards VALUES \('\*{12}1111'\)/, 'its statement was logged, masked');
like($log, qr/\Q(pan)=(************1111) already exists\E/, 'its DETAIL was logged, masked');
like($log, qr/charging card \*{11}0005/, 'PL/pgSQL notice masked');
like($log, qr/HINT:  card \*{11}0005/, 'hint masked');
like($log, qr/\[REDACTED_TRACK\]/, 'track data replaced');
like($log, qr/cvv: \[REDACTED_CVV\]/, 'cvv replaced');
for my $p (@pans)
{
	unlike($log, qr/\Q$p\E/, "card ending in @{[substr($p, -4)]} is not in the log");
	my $spaced = join(' ', unpack('(A4)*', $p));
	unlike($log, qr/\Q$spaced\E/, "... nor with spaces");
}
unlike($log, qr/cvv: 321/, 'the cvv is not in the log');

# The statement is logged masked, yet the statement's own code reads the
# original text through current_query(), before and after the log line.
$node->safe_psql('postgres', 'CREATE TABLE seen (q text)');
$log_start = -s $node->logfile;
$node->safe_psql('postgres', q{DO $$ BEGIN INSERT INTO seen VALUES (current_query());
RAISE WARNING 'logged with its statement'; INSERT INTO seen VALUES (current_query());
PERFORM 'card 4000 0566 5566 5556'; END $$});
$log = slurp_file($node->logfile, $log_start);
like($log, qr{STATEMENT:  DO .*PERFORM 'card \*{12}5556'}s, 'the statement is logged masked');
unlike($log, qr/4000 0566/, 'the card number is not in the log');
is($node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE q LIKE '%card 4000 0566 5566 5556%') FROM seen}),
	'2', 'current_query() returns the original text after the log line too');
is($node->safe_psql('postgres', 'SHOW payments.redact_server_log'),
	'on', 'preloaded: SHOW payments.redact_server_log says on');

# Only a superuser may turn the scrubber off; turned off, the number shows.
($ret, $out, $err) = $node->psql('postgres', 'SET payments.redact_server_log = off',
	extra_params => [ '-U', 'app' ]);
like($err, qr/permission denied to set parameter "payments.redact_server_log"/,
	'an application role cannot turn the scrubber off');
$log_start = -s $node->logfile;
$node->psql('postgres',
	"SET payments.redact_server_log = off; SELECT '6011111111111117'::int");
$log = slurp_file($node->logfile, $log_start);
like($log, qr/6011111111111117/, 'with the scrubber off the same error logs the number');

# The counter counted the masks of the log scrubber as well.
my $masked = $node->safe_psql('postgres',
	"SELECT value FROM payments.stats WHERE name = 'redact_pans_masked'");
cmp_ok($masked, '>=', 6, 'redact_pans_masked counts the log scrubber');

$node->stop;
done_testing();
