# 040_idempotency_shape.pl: a backend that has used the direct-access fast
# path of idempotency_begin (its table shape cached) stays correct when a
# DBA changes a column type from another session: the change invalidates
# the cached shape, the next calls go through SQL with the new types, and
# nothing crashes.  Then the table is dropped under it: a clear error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('idempotency_shape');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'payments'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION payments');

# The application's backend: begins and completes a key on the fast path.
my $app = $node->background_psql('postgres', on_error_stop => 0);
is($app->query_safe(
		q{SELECT outcome FROM payments.idempotency_begin('k1', '{"n": 1}')}),
	'started', 'fast path: started');
$app->query_safe(q{SELECT payments.idempotency_complete('k1', '{"charge": "ch_1"}')});
is($app->query_safe(
		q{SELECT outcome || ' ' || response::text FROM payments.idempotency_begin('k1', '{"n": 1}')}),
	'completed {"charge": "ch_1"}', 'fast path: replayed');

# A DBA changes two column types while the application's backend is open.
$node->safe_psql('postgres', q{
	ALTER TABLE payments.idempotency_keys
		ALTER COLUMN created_at TYPE timestamp,
		ALTER COLUMN response TYPE json USING response::json});

is($app->query_safe(
		q{SELECT outcome || ' ' || response::text FROM payments.idempotency_begin('k1', '{"n": 1}')}),
	'completed {"charge": "ch_1"}', 'after ALTER TYPE: the same backend replays');
is($app->query_safe(
		q{SELECT outcome FROM payments.idempotency_begin('k2', '{"n": 2}')}),
	'started', 'after ALTER TYPE: a new key starts');
$app->query_safe(q{SELECT payments.idempotency_complete('k2', '{"charge": "ch_2"}')});
is($app->query_safe(
		q{SELECT outcome || ' ' || response::text FROM payments.idempotency_begin('k2', '{"n": 2}')}),
	'completed {"charge": "ch_2"}', 'after ALTER TYPE: completed and replayed');
like($app->query(
		q{SELECT outcome FROM payments.idempotency_begin('k2', '{"n": 3}')}) // '',
	qr/^$/, 'after ALTER TYPE: a different request is still refused');
like($app->{stderr}, qr/PM001|already used with a different request/, 'with PM001');
$app->{stderr} = '';

# The table is taken out of the extension and dropped under the backend.
$node->safe_psql('postgres', q{
	ALTER EXTENSION payments DROP TABLE payments.idempotency_keys;
	DROP TABLE payments.idempotency_keys});
$app->query(q{SELECT outcome FROM payments.idempotency_begin('k3', '{}')});
like($app->{stderr}, qr/table payments\.idempotency_keys does not exist/,
	'after DROP TABLE: a clear error');
is($app->query('SELECT 1'), '1', 'the backend is alive');
$app->quit;

unlike(slurp_file($node->logfile), qr/PANIC|TRAP|terminated by signal/, 'no crash');
$node->stop;
done_testing();
