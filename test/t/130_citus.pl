# 130_citus.pl: payments on a Citus cluster (a coordinator and two workers
# on this machine), against a plain node holding the same data.  After
# payments.citus_distribute():
# - the layout is the design's, and a second call changes nothing;
# - 8 sessions race on 40 idempotency keys through the coordinator (and
#   through distributed function calls): each key is started exactly once,
#   replays find the completed row, the rows are in the shards and none in
#   the coordinator's or the workers' own tables; purge deletes by batches;
# - webhooks are received once and their redeliveries are duplicates, also
#   when 8 sessions deliver them at once;
# - a saga runs to completion and another is compensated, their events in
#   the shards of their saga; the saga log stays append-only on the shards;
#   8 sessions claiming stalled sagas at once never claim one twice;
# - fraud velocity counts across evaluations and a rule change reaches a
#   session that cached the rules;
# - reconcile on the distributed ledger and report gives the plain node's
#   rows;
# - an application role (not a superuser) works through the coordinator
#   and cannot read the tables;
# - the background worker works on the coordinator only.
# Skipped when Citus is not installed (../shared/tools/citus-build.sh).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA qw(hmac_sha256_hex);

my $plain = PostgreSQL::Test::Cluster->new('plain');
my $libdir = $plain->config_data('--pkglibdir');
plan skip_all => "Citus is not installed ($libdir/citus.so is missing)"
  unless -e "$libdir/citus.so";

$plain->init;
$plain->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'payments'
payments.reconcile_time = ''
});
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION payments');

my @nodes = map { PostgreSQL::Test::Cluster->new($_) } qw(coordinator worker1 worker2);
for my $node (@nodes)
{
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'citus,payments'
listen_addresses = '127.0.0.1'
max_connections = 60
max_prepared_transactions = 60
citus.node_conninfo = 'sslmode=disable'
payments.database = 'postgres'
payments.worker_naptime = 3600
payments.reconcile_time = ''
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION citus');
}
my ($coord, $w1, $w2) = @nodes;
$coord->safe_psql('postgres', qq{
	SELECT citus_set_coordinator_host('127.0.0.1', @{[ $coord->port ]});
	SELECT citus_add_node('127.0.0.1', @{[ $w1->port ]});
	SELECT citus_add_node('127.0.0.1', @{[ $w2->port ]});
	CREATE EXTENSION payments;
	SELECT payments.idempotency_begin('before-1', '{}');
	INSERT INTO payments.ledger VALUES ('tx-before', 1, 'USD', 'captured', now());
});

my ($code, $out, $err) = $w1->psql('postgres', 'SELECT payments.citus_distribute()');
like($err, qr/must be called on the coordinator/, 'citus_distribute on a worker node: refused');

# the layout
my $layout = $coord->safe_psql('postgres', q{
	SELECT string_agg(table_name || ':' || kind || ':' || coalesce(distribution_column, '-'), ' '
	                  ORDER BY table_name::text)
	FROM payments.citus_distribute()});
is($layout, join(' ', qw(
	payments.fraud_evaluations:distributed:id
	payments.fraud_lists:reference:-
	payments.fraud_rules:reference:-
	payments.fraud_velocity:distributed:key_value
	payments.gateway_report:distributed:transaction_id
	payments.idempotency_keys:distributed:key
	payments.ledger:distributed:transaction_id
	payments.saga_events:distributed:saga_id
	payments.sagas:distributed:id
	payments.status_map:reference:-
	payments.webhook_endpoints:reference:-
	payments.webhook_inbox:distributed:event_id
	payments.webhook_rejections:distributed:id
	payments.webhook_secrets:reference:-)),
	'citus_distribute: every table on its documented column');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM payments.citus_distribute()}), '14',
	'citus_distribute again: nothing to do, no error');
is($coord->safe_psql('postgres', q{
	SELECT string_agg(p.logicalrelid::text, ' ' ORDER BY p.logicalrelid::text)
	FROM pg_dist_partition p, pg_dist_partition q
	WHERE p.colocationid = q.colocationid AND p.logicalrelid <> q.logicalrelid
	  AND p.partmethod = 'h'}),
	'payments.gateway_report payments.ledger payments.saga_events payments.sagas',
	'sagas with their events, and ledger with gateway report, are colocated');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM pg_dist_object
	WHERE objid::regprocedure::text LIKE 'payments.%' AND distribution_argument_index IS NOT NULL}),
	'7', 'the key-addressed functions are distributed functions');

is($coord->safe_psql('postgres', q{
	SELECT (SELECT state FROM payments.idempotency_keys WHERE key = 'before-1') || ' '
		|| (SELECT count(*) FROM payments.ledger WHERE transaction_id = 'tx-before')}),
	'in_flight 1', 'rows written before citus_distribute are in the shards');

my @shell_tables = qw(idempotency_keys webhook_inbox sagas saga_events
  fraud_evaluations fraud_velocity ledger gateway_report);

# shell_rows: the bytes in the nodes' own copies of the distributed tables
# (their rows belong in the shards)
sub shell_bytes
{
	my $sql = 'SELECT ' . join(' + ', map { "pg_relation_size('payments.$_')" } @shell_tables);
	return join(' ', map { $_->safe_psql('postgres', $sql) } @nodes);
}

# ---- idempotency ----
$coord->safe_psql('postgres', q{
	CREATE TABLE race_log (k int, outcome text);
	CREATE PROCEDURE race(k int) LANGUAGE plpgsql AS $$
	DECLARE
		r record;
	BEGIN
		SELECT outcome, token INTO r FROM payments.idempotency_begin('race-' || k,
			jsonb_build_object('k', k));
		IF r.outcome = 'started' THEN
			PERFORM payments.idempotency_complete('race-' || k,
				jsonb_build_object('by', pg_backend_pid()), token => r.token);
		END IF;
		INSERT INTO race_log VALUES (k, r.outcome);
	EXCEPTION WHEN SQLSTATE 'PM002' THEN
		INSERT INTO race_log VALUES (k, 'in_flight');
	END $$;
});
$coord->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=50',
	0, [qr{processed: 400/400}], [],
	'8 sessions race on 40 keys through the coordinator',
	{ 'citus_race' => "\\set k random(1, 40)\nCALL race(:k);\n" });
is($coord->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE started <> 1) FROM (
		SELECT count(*) FILTER (WHERE outcome = 'started') AS started
		FROM race_log GROUP BY k) AS s}), '0',
	'every key raced on was started exactly once');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM payments.idempotency_keys
	WHERE key LIKE 'race-%' AND state = 'completed'}),
	$coord->safe_psql('postgres', 'SELECT count(DISTINCT k) FROM race_log'),
	'each of them is completed');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM race_log WHERE outcome NOT IN ('started', 'completed')}), '0',
	'the others replayed the completed row');

# a top-level call is run on the worker holding the key (a distributed
# function call); its rows are where the coordinator's calls find them
$coord->safe_psql('postgres', q{
	SELECT payments.idempotency_begin('direct-1', '{"a": 1}');
	SELECT payments.idempotency_complete('direct-1', '{"charge": "ch_1"}');
});
is($coord->safe_psql('postgres', q{
	SELECT outcome || ' ' || response::text FROM payments.idempotency_begin('direct-1', '{"a": 1}')
	WHERE true}),
	'completed {"charge": "ch_1"}', 'a delegated begin and complete, replayed through the coordinator');
my $stat = q{SELECT value FROM payments.stats WHERE name = 'idempotency_started'};
is($w1->safe_psql('postgres', $stat) + $w2->safe_psql('postgres', $stat), 1,
	'the delegated begin ran on a worker node');
($code) = $coord->psql('postgres', q{
	SELECT * FROM payments.idempotency_begin('direct-1', '{"a": 2}')});
isnt($code, 0, 'another request under the same key is refused (PM001)');

is($coord->safe_psql('postgres', q{
	SELECT sum(result::bigint) FROM run_command_on_shards('payments.idempotency_keys',
		'SELECT count(*) FROM %s')}),
	$coord->safe_psql('postgres', 'SELECT count(*) FROM payments.idempotency_keys'),
	'every key row is in a shard');
is(shell_bytes(), '0 0 0', 'no rows in the nodes\' own copies of the distributed tables');

$coord->safe_psql('postgres', q{
	UPDATE payments.idempotency_keys SET expires_at = now() - interval '1 hour'
	WHERE key LIKE 'race-%'});
is($coord->safe_psql('postgres', q{SELECT payments.idempotency_purge(now(), 5)}), '5',
	'purge with max_rows deletes that many');
is($coord->safe_psql('postgres', q{SELECT payments.idempotency_purge(now())}),
	$coord->safe_psql('postgres', q{SELECT count(DISTINCT k) - 5 FROM race_log}),
	'purge without a limit deletes the rest');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM payments.idempotency_keys}), '2',
	'the keys that have not expired are kept');

# ---- webhooks ----
my $secret = 'whsec_citus_test';
$coord->safe_psql('postgres', qq{
	INSERT INTO payments.webhook_endpoints (name, scheme) VALUES ('stripe', 'stripe');
	SELECT payments.webhook_secret_add('stripe', '$secret');
});
# the signature is computed here in Perl, the receive call made by SQL
sub receive
{
	my ($node, $id) = @_;
	my $t = time;
	my $body = qq({"id": "$id"});
	my $sig = hmac_sha256_hex("$t.$body", $secret);
	return $node->safe_psql('postgres', qq{
		SELECT status FROM payments.webhook_receive('stripe',
			'{"Stripe-Signature": "t=$t,v1=$sig"}', convert_to('$body', 'UTF8'))});
}
is(receive($coord, 'evt_1'), 'accepted', 'a webhook is accepted');
is(receive($coord, 'evt_1'), 'duplicate', 'its redelivery is a duplicate');
is($coord->safe_psql('postgres', q{
	SELECT count(*) || ' ' || bool_and(headers = '{}') FROM payments.webhook_inbox}), '1 true',
	'stored once, without its signature header');

my $script = '';
for my $i (1 .. 20)
{
	my $t = time;
	my $body = qq({"id": "evt_race_$i"});
	my $sig = hmac_sha256_hex("$t.$body", $secret);
	$script .= qq{SELECT status FROM payments.webhook_receive('stripe', '{"Stripe-Signature": "t=$t,v1=$sig"}', convert_to('$body', 'UTF8'));\n};
}
$coord->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=3',
	0, [qr{processed: 24/24}], [],
	'8 sessions deliver the same 20 events at once',
	{ 'citus_webhooks' => $script });
is($coord->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT event_id) FROM payments.webhook_inbox
	WHERE event_id LIKE 'evt_race_%'}), '20 20', 'each event stored once');
is($coord->safe_psql('postgres', q{
	SELECT sum(result::bigint) FROM run_command_on_shards('payments.webhook_inbox',
		'SELECT count(*) FROM %s')}), '21', 'in the shards');
$coord->safe_psql('postgres', q{
	UPDATE payments.webhook_inbox SET received_at = now() - interval '1 year'
	WHERE event_id LIKE 'evt_race_%'});
is($coord->safe_psql('postgres', q{SELECT payments.webhook_purge(now(), 15)}), '15',
	'webhook purge with max_rows');
is($coord->safe_psql('postgres', q{SELECT payments.webhook_purge(now())}), '5',
	'and without: only the old rows');

# ---- sagas ----
my $steps = q{'[{"name": "reserve"}, {"name": "charge"}, {"name": "ship", "compensable": false}]'};
my $sagas = qq{
	SELECT payments.saga_start('checkout', $steps, '{}', saga_id => 'order-1');
	SELECT payments.saga_start('checkout', $steps, '{}', saga_id => 'order-2');
	SELECT payments.saga_record('order-1', 'reserve', 'succeeded');
	SELECT payments.saga_record('order-1', 'charge', 'failed', '{"retriable": true}');
	SELECT payments.saga_record('order-1', 'charge', 'succeeded');
	SELECT payments.saga_record('order-1', 'ship', 'succeeded');
	SELECT payments.saga_record('order-2', 'reserve', 'succeeded');
	SELECT payments.saga_record('order-2', 'charge', 'succeeded');
	SELECT payments.saga_record('order-2', 'ship', 'failed', '{"error": "no carrier"}');
	SELECT payments.saga_record('order-2', 'charge', 'succeeded');
	SELECT payments.saga_record('order-2', 'reserve', 'succeeded');
};
my $saga_log = q{
	SELECT string_agg(concat_ws(' ', saga_id, event, step, attempt, from_state, to_state), E'\n'
	                  ORDER BY saga_id, id)
	FROM payments.saga_events};
$coord->safe_psql('postgres', $sagas);
$plain->safe_psql('postgres', $sagas);
is($coord->safe_psql('postgres', q{
	SELECT string_agg(id || ' ' || state, ', ' ORDER BY id) FROM payments.sagas}),
	'order-1 completed, order-2 compensated', 'a saga completes, another is compensated');
$stat = q{SELECT value FROM payments.stats WHERE name = 'saga_completed'};
is($w1->safe_psql('postgres', $stat) + $w2->safe_psql('postgres', $stat), 1,
	'the delegated saga_record calls ran on the worker nodes');
is($coord->safe_psql('postgres', $saga_log), $plain->safe_psql('postgres', $saga_log),
	'their logs, event by event, are the plain node\'s');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT DISTINCT get_shard_id_for_distribution_column('payments.sagas', e.saga_id)
		- get_shard_id_for_distribution_column('payments.saga_events', e.saga_id)
		FROM payments.saga_events e) AS d}), '1',
	'each saga\'s events are in the shard colocated with the saga');
($code, $out, $err) = $coord->psql('postgres',
	q{DELETE FROM payments.saga_events WHERE saga_id = 'order-1'});
like($err, qr/append-only/, 'the saga log stays append-only on the shards');
$coord->safe_psql('postgres', qq{
	SELECT payments.saga_start('checkout', $steps, '{}', saga_id => 'order-3');
	UPDATE payments.sagas SET updated_at = now() - interval '1 hour' WHERE id = 'order-3';
});
is($coord->safe_psql('postgres', q{
	SELECT saga_id || ' ' || action FROM payments.saga_recoverable('5 minutes')}),
	'order-3 run', 'saga_recoverable claims the stalled saga');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM payments.saga_recoverable('5 minutes')}), '0',
	'once');

# 40 stalled sagas, 8 sessions claiming them at once: each claimed once
$coord->safe_psql('postgres', qq{
	SELECT payments.saga_start('checkout', $steps, '{}', saga_id => 'stalled-' || i)
	FROM generate_series(1, 40) AS i;
	UPDATE payments.sagas SET updated_at = now() - interval '1 hour' WHERE id LIKE 'stalled-%';
	CREATE TABLE claims (saga_id text, by_pid int);
});
$coord->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=10',
	0, [qr{processed: 80/80}], [],
	'8 sessions claim stalled sagas at once',
	{ 'citus_recover' => "INSERT INTO claims SELECT saga_id, pg_backend_pid() FROM payments.saga_recoverable('5 minutes');
" });
is($coord->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT saga_id) FROM claims}), '40 40',
	'every stalled saga claimed, none twice');

# ---- fraud ----
$coord->safe_psql('postgres', q{
	INSERT INTO payments.fraud_rules (name, kind, params) VALUES
		('user_3', 'velocity', '{"key": "user_id", "window": "1 hour", "max_count": 3}');
});
my $decisions = $coord->safe_psql('postgres', q{
	SELECT string_agg((SELECT decision FROM payments.fraud_evaluate(
		jsonb_build_object('user_id', 'u' || (i % 2), 'amount', 10))), ',' ORDER BY i)
	FROM generate_series(1, 10) AS i});
is($decisions, 'approve,approve,approve,approve,approve,approve,block,block,block,block',
	'velocity counts each user\'s evaluations across the shards');
is($coord->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT key_value) FROM payments.fraud_velocity}), '10 2',
	'velocity rows, distributed by key value');
my $session = $coord->background_psql('postgres');
$session->query_safe(q{SELECT decision FROM payments.fraud_evaluate('{"user_id": "u9"}')});
$coord->safe_psql('postgres', q{
	INSERT INTO payments.fraud_rules (name, kind, params) VALUES
		('no_u9', 'expression', '{"expr": "user_id = ''u9''"}')});
is($session->query_safe(q{
	SELECT decision FROM payments.fraud_evaluate('{"user_id": "u9"}', record => false)}),
	'review', 'a rule added reaches a session that had cached the rules');
$session->quit;

# ---- reconciliation ----
my $data = q{
	INSERT INTO payments.ledger
	SELECT 'tx' || i, i * 1.25, 'USD', 'captured', '2026-11-30 00:00Z'::timestamptz + i * interval '1 minute'
	FROM generate_series(1, 1000) AS i WHERE i % 97 <> 0;
	INSERT INTO payments.gateway_report
	SELECT 'tx' || i, i * 1.25 + CASE WHEN i % 89 = 0 THEN 0.01 ELSE 0 END, 'USD',
	       CASE WHEN i % 71 = 0 THEN 'refunded' ELSE 'captured' END,
	       '2026-11-30 00:00Z'::timestamptz + i * interval '1 minute'
	FROM generate_series(1, 1000) AS i WHERE i % 83 <> 0;
	INSERT INTO payments.gateway_report VALUES ('tx7', 8.75, 'USD', 'captured', '2026-11-30 00:07Z');
	SELECT payments.reconcile('2026-11-30', '2026-12-01');
};
my $findings = q{
	SELECT string_agg(concat_ws('|', seq, transaction_id, kind, internal_rows, internal_amount,
	                            internal_status, gateway_rows, gateway_amount, gateway_status), E'\n' ORDER BY seq)
	FROM payments.reconciliation_discrepancies
};
$plain->safe_psql('postgres', $data);
$coord->safe_psql('postgres', $data);
my $want = $plain->safe_psql('postgres', $findings);
ok(length($want) > 0, 'the plain node finds discrepancies');
is($coord->safe_psql('postgres', $findings), $want,
	'reconcile on the distributed ledger and report gives the plain node\'s rows');
my $summary = q{SELECT summary FROM payments.reconciliation_runs};
is($coord->safe_psql('postgres', $summary), $plain->safe_psql('postgres', $summary),
	'and the same summary');

# ---- an application role, not a superuser ----
$coord->safe_psql('postgres', q{
	CREATE ROLE app LOGIN;
	GRANT USAGE ON SCHEMA payments TO app;
});
is($coord->safe_psql('postgres', q{
	SELECT payments.idempotency_begin('app-1', '{"a": 1}');
	SELECT payments.idempotency_complete('app-1', '{"ok": 1}');
	BEGIN;
	SELECT payments.idempotency_begin('app-2', '{"a": 1}');
	SELECT payments.idempotency_complete('app-2', '{"ok": 1}');
	COMMIT;
	SELECT string_agg(outcome, ' ' ORDER BY k)
	FROM unnest(ARRAY['app-1', 'app-2']) AS k, payments.idempotency_begin(k, '{"a": 1}');
	SELECT payments.saga_start('checkout', '[{"name": "a"}]', '{}', saga_id => 'app-saga');
	SELECT payments.saga_record('app-saga', 'a', 'succeeded');
	SELECT decision FROM payments.fraud_evaluate('{"user_id": "app"}');
}, extra_params => [ '-U', 'app' ]) =~ s/^.*\n(?=completed completed)//sr,
	"completed completed\napp-saga\ncompleted\napprove",
	'an application role: keys delegated and routed, a saga, an evaluation');
($code, $out, $err) = $coord->psql('postgres', 'SELECT count(*) FROM payments.idempotency_keys',
	extra_params => [ '-U', 'app' ]);
like($err, qr/permission denied/, 'and it cannot read the keys table');

# ---- the background worker ----
ok($coord->poll_query_until('postgres', q{
	SELECT state = 'idle' FROM payments.worker_status}), 'the coordinator\'s worker works');
for my $w ($w1, $w2)
{
	ok($w->poll_query_until('postgres', q{
		SELECT state = 'idle: a Citus worker node' FROM payments.worker_status}),
		'a worker node\'s worker stays idle');
}

is(shell_bytes(), '0 0 0', 'still no rows in the nodes\' own copies');

$_->stop for (@nodes, $plain);
done_testing();
