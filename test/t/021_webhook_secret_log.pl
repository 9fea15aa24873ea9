# 021_webhook_secret_log.pl: webhook secrets stay out of the server log.
# With every statement logged, the secret functions' arguments, literals of
# statements on payments.webhook_secrets, secret-shaped tokens (whsec_,
# shpss_) anywhere, and the failing row of a rejected INSERT into the
# secrets table are masked; the secrets still work.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('webhook_secret_log');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'payments'
log_statement = 'all'
log_min_error_statement = error
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION payments;
	INSERT INTO payments.webhook_endpoints (name, scheme) VALUES ('gh', 'github'), ('std', 'standard');
});

my @secrets = (
	q{It's a Secret to Everybody},
	'github-rotated-4f1c2a9e',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
	'plain-secret-in-insert',
	'another-plain-secret',
	'shpss_0123456789abcdef0123456789abcdef',
	'slack-signing-0a1b2c3d4e5f');
my $offset = -s $node->logfile;
$node->safe_psql('postgres', q{SELECT payments.webhook_secret_add('gh', 'It''s a Secret to Everybody')});
$node->safe_psql('postgres', q{SELECT payments.webhook_secret_rotate('gh', 'github-rotated-4f1c2a9e', '1 hour')});
$node->safe_psql('postgres', q{SELECT payments.webhook_secret_add('std', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')});
# mistakes an operator makes: each fails, and its statement and detail are logged
$node->psql('postgres', q{INSERT INTO payments.webhook_secrets (endpoint, secret) VALUES ('unknown', 'plain-secret-in-insert')});
$node->psql('postgres', q{INSERT INTO payments.webhook_secrets (endpoint, secret) VALUES (NULL, 'another-plain-secret')});
$node->psql('postgres', q{SELECT payments.webhook_secret_add('nope', 'slack-signing-0a1b2c3d4e5f')});
$node->psql('postgres', q{SELECT 'shpss_0123456789abcdef0123456789abcdef' WHERE 1/0 = 1});

my $log = slurp_file($node->logfile, $offset);
for my $secret (@secrets)
{
	unlike($log, qr/\Q$secret\E/, "not in the log: $secret");
}
like($log, qr/webhook_secret_add\('\*\*', '\*+'\)/, 'the call is logged, its arguments masked');
like($log, qr/Failing row contains \(\*+/, 'the failing row of the secrets table is hidden');
like($log, qr/shpss_\*{20,}/, 'a secret-shaped token is masked where it stands');

# the secrets work
is($node->safe_psql('postgres', q{
	SELECT status FROM payments.webhook_receive('gh',
		'{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		  "X-GitHub-Delivery": "d-1"}', 'Hello, World!'::bytea)}),
	'accepted', 'the secret added through the function verifies');

$node->stop;
done_testing();
