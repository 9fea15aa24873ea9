# 020_webhook_secrets.pl: stored webhook secrets never reach the server log,
# even with every statement logged, verbose errors and failing deliveries;
# an application role receives deliveries without being able to read them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('webhook_secrets');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'payments'
log_statement = 'all'
log_min_error_statement = 'debug5'
log_error_verbosity = 'verbose'
log_min_messages = 'debug1'
));
$node->start;

my @secrets = ('It-is-a-Secret-to-Everybody-7f3a',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_bro*ken');

# The administrator stores the secrets with statement logging off for that
# session, as the README says to.
$node->safe_psql('postgres', qq(
SET log_statement = 'none';
CREATE EXTENSION payments;
CREATE ROLE app LOGIN;
INSERT INTO payments.webhook_endpoints (name, scheme)
	VALUES ('gh', 'github'), ('std', 'standard'), ('broken', 'standard');
INSERT INTO payments.webhook_secrets (endpoint, secret)
	VALUES ('gh', '$secrets[0]'), ('std', '$secrets[1]'), ('broken', '$secrets[2]');
));
my $log_start = -s $node->logfile;

# Signed with the first secret, computed here, not by the extension.
my $sig = $node->safe_psql('postgres', qq(
SET log_statement = 'none';
CREATE EXTENSION pgcrypto;
SELECT encode(hmac('{"id": 1}'::bytea, '$secrets[0]'::bytea, 'sha256'), 'hex');
));

my $receive = sub {
	my ($endpoint, $headers, $body) = @_;
	return $node->psql('postgres',
		"SELECT status, reason FROM payments.webhook_receive('$endpoint', '$headers', '$body'::bytea)",
		extra_params => [ '-U', 'app' ]);
};

my ($ret, $out, $err) = $receive->('gh',
	qq({"X-Hub-Signature-256": "sha256=$sig", "X-GitHub-Delivery": "d1"}), '{"id": 1}');
is($out, 'accepted|ok', 'app role: a signed delivery is accepted');
($ret, $out, $err) = $receive->('gh',
	qq({"X-Hub-Signature-256": "sha256=$sig", "X-GitHub-Delivery": "d1"}), '{"id": 2}');
is($out, 'rejected|no_matching_signature', 'app role: a forged delivery is rejected');
($ret, $out, $err) = $receive->('std', '{"webhook-signature": "v1,x"}', 'x');
is($out, 'rejected|missing_header', 'app role: a malformed delivery is rejected');
($ret, $out, $err) = $receive->('broken', '{}', 'x');
like($err, qr/webhook secret 1 is not a Standard Webhooks secret/,
	'a broken stored secret is an error naming its position');
($ret, $out, $err) = $receive->('nowhere', '{}', 'x');
like($err, qr/unknown webhook endpoint "nowhere"/, 'unknown endpoint is an error');
($ret, $out, $err) = $node->psql('postgres',
	'SELECT secret FROM payments.webhook_secrets', extra_params => [ '-U', 'app' ]);
like($err, qr/permission denied for table webhook_secrets/,
	'app role cannot read the secrets');

my $log = slurp_file($node->logfile, $log_start);
like($log, qr/webhook_receive\('gh'/, 'the receive statements were logged');
for my $s (@secrets)
{
	my $core = $s =~ s/^whsec_//r;
	unlike($log, qr/\Q$core\E/, "secret ending in ...@{[substr($core, -4)]} is not in the log");
}

$node->stop;
done_testing();
