# 120_roles_backup.pl: the deployment the README describes.  A superuser
# creates the extension; an admin role (granted the README's list) manages
# endpoints, secrets, fraud rules, the status map and the purges; an
# application role only calls; a backup role with pg_read_all_data dumps
# the database, and the dump restores into a fresh database with every
# row of the extension's tables.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('roles');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'payments'
payments.reconcile_time = ''
});
$node->start;

# the README's set-up, as the superuser
$node->safe_psql('postgres', q{
	CREATE ROLE payments_admin LOGIN;
	CREATE ROLE shop_app LOGIN;
	CREATE ROLE backup LOGIN IN ROLE pg_read_all_data;
	CREATE DATABASE shop OWNER payments_admin;
});
$node->safe_psql('shop', q{
	CREATE EXTENSION payments;
	GRANT SELECT, INSERT, UPDATE, DELETE ON payments.webhook_endpoints,
	    payments.fraud_rules, payments.fraud_lists, payments.status_map,
	    payments.ledger, payments.gateway_report TO payments_admin;
	GRANT SELECT ON payments.webhook_inbox, payments.webhook_rejections,
	    payments.fraud_evaluations, payments.fraud_rule_hits,
	    payments.reconciliation_runs, payments.reconciliation_discrepancies,
	    payments.reconciliation_open, payments.sagas, payments.saga_events,
	    payments.worker_status TO payments_admin;
	GRANT EXECUTE ON FUNCTION
	    payments.webhook_secret_add(text, text, timestamptz),
	    payments.webhook_secret_rotate(text, text, interval),
	    payments.webhook_secret_remove(text, bigint),
	    payments.webhook_purge(timestamptz, bigint),
	    payments.idempotency_purge(timestamptz, bigint),
	    payments.fraud_purge(timestamptz, bigint),
	    payments.fraud_backtest(jsonb, timestamptz),
	    payments.reconcile(timestamptz, timestamptz, regclass, regclass, numeric),
	    payments.reconciliation_resolve(bigint, text, text),
	    payments.worker_run_now()
	    TO payments_admin;
});

# the admin configures
$node->safe_psql('shop', q{
	INSERT INTO payments.webhook_endpoints (name, scheme) VALUES ('gh', 'github');
	SELECT payments.webhook_secret_add('gh', 'It''s a Secret to Everybody');
	INSERT INTO payments.fraud_lists (list_name, value) VALUES ('blocked', 'evil@example.com');
	INSERT INTO payments.fraud_rules (name, kind, params) VALUES
	    ('blocked', 'blocklist', '{"field": "email", "list": "blocked"}');
	INSERT INTO payments.status_map VALUES ('captured', 'succeeded');
	INSERT INTO payments.ledger VALUES ('t1', 10, 'USD', 'captured', now());
	INSERT INTO payments.gateway_report VALUES ('t1', 10, 'USD', 'succeeded', now());
	SELECT payments.reconcile(now() - interval '1 day', now() + interval '1 minute');
	SELECT payments.webhook_purge(now(), 100);
}, extra_params => [ '-U', 'payments_admin' ]);
pass('the admin role manages endpoints, secrets, rules, lists, the map, runs and purges');
my ($ret, $out, $err) = $node->psql('shop', 'SELECT secret FROM payments.webhook_secrets',
	extra_params => [ '-U', 'payments_admin' ]);
like($err, qr/permission denied/, 'the admin cannot read the secrets back');

# the application only calls
$node->safe_psql('shop', q{
	SELECT payments.idempotency_begin('k1', '{"amount": 1}');
	SELECT status FROM payments.webhook_receive('gh',
	    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	      "X-GitHub-Delivery": "d-1"}', 'Hello, World!'::bytea);
	SELECT decision FROM payments.fraud_evaluate('{"email": "evil@example.com"}');
	SELECT payments.saga_start('checkout', '[{"name": "a"}]', saga_id => 's1');
	SELECT payments.saga_record('s1', 'a', 'succeeded');
	SELECT payments.redact('4111 1111 1111 1111');
}, extra_params => [ '-U', 'shop_app' ]);
pass('the application role calls every module');
for my $sql (
	'SELECT * FROM payments.webhook_endpoints',
	'SELECT * FROM payments.idempotency_keys',
	'SELECT payments.webhook_purge()',
	q{SELECT payments.webhook_secret_add('gh', 'x')},
	q{SELECT payments.reconcile(now() - interval '1 day', now())},
	'DELETE FROM payments.sagas')
{
	($ret, $out, $err) = $node->psql('shop', $sql, extra_params => [ '-U', 'shop_app' ]);
	like($err, qr/permission denied/, "the application may not: $sql");
}

# the database owner alone cannot dump (the tables are the superuser's);
# the backup role can, and the dump restores
($ret, $out, $err) = $node->psql('shop', 'SELECT count(*) FROM payments.webhook_secrets',
	extra_params => [ '-U', 'backup' ]);
is($out, '1', 'the backup role reads the extension tables');
my $dump = $node->basedir . '/shop.dump';
$node->command_fails([ 'pg_dump', '-Fc', '-U', 'payments_admin', '-d', $node->connstr('shop'),
		'-f', $node->basedir . '/owner.dump' ],
	'the database owner alone cannot dump the secrets');
$node->command_ok([ 'pg_dump', '-Fc', '-U', 'backup', '-d', $node->connstr('shop'), '-f', $dump ],
	'pg_dump as the backup role');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore into a fresh database');
my $counts = q{SELECT (SELECT count(*) FROM payments.webhook_endpoints) || ' ' ||
	(SELECT count(*) FROM payments.webhook_secrets) || ' ' ||
	(SELECT count(*) FROM payments.webhook_inbox) || ' ' ||
	(SELECT count(*) FROM payments.idempotency_keys) || ' ' ||
	(SELECT count(*) FROM payments.fraud_rules) || ' ' ||
	(SELECT count(*) FROM payments.fraud_evaluations) || ' ' ||
	(SELECT count(*) FROM payments.reconciliation_runs) || ' ' ||
	(SELECT count(*) FROM payments.sagas) || ' ' ||
	(SELECT count(*) FROM payments.saga_events)};
is($node->safe_psql('restored', $counts), $node->safe_psql('shop', $counts),
	'every row of the extension tables is back');
is($node->safe_psql('restored', q{
	SELECT status FROM payments.webhook_receive('gh',
	    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	      "X-GitHub-Delivery": "d-1"}', 'Hello, World!'::bytea)}),
	'duplicate', 'the restored inbox still deduplicates, with the restored secret');
is($node->safe_psql('restored', q{SELECT action FROM payments.saga_next('s1')}), 'done',
	'the restored saga is where it was');

$node->stop;
done_testing();
