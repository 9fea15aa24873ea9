# 080_fraud_velocity_stress.pl: 8 clients screen attempts of 20 users and
# 20 cards at once, recorded, with velocity rules of at most 5 attempts a
# user and at most 1,000 a card (sum of amounts).  Then, for every user
# and card, replaying the audit trail in id order must give exactly the
# decisions the engine made: no attempt over a limit got through because
# another session had not committed yet, and none was blocked early.  An
# immediate shutdown in the middle of a second round loses nothing that
# committed and leaves no half evaluation: every velocity row belongs to
# a recorded evaluation and each evaluation has its rows; the indexes
# agree with the tables (amcheck).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('fraud_velocity');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'payments'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION payments;
	CREATE EXTENSION amcheck;
	INSERT INTO payments.fraud_rules (name, kind, params, position) VALUES
		('user_5', 'velocity',
		 '{"key": "user_id", "window": "1 hour", "max_count": 5}', 1),
		('card_1000', 'velocity',
		 '{"key": "card", "window": "1 hour", "sum_field": "amount", "max_sum": 1000}', 2);
});

my $script = q{\set u random(1, 20)
\set c random(1, 20)
\set a random(1, 300)
SELECT decision FROM payments.fraud_evaluate(jsonb_build_object('user_id', :u, 'card', 'c' || :c, 'amount', :a));
};

$node->pgbench('--no-vacuum --client=8 --jobs=2 --transactions=100',
	0, [qr{processed: 800/800}], [],
	'8 clients screen 800 attempts of 20 users and 20 cards',
	{ 'fraud_velocity' => $script });

# Replay: an attempt hits user_5 when 5 or more earlier attempts of its
# user were recorded, and (if it got that far) card_1000 when the earlier
# amounts of its card plus its own go over 1,000.
my $replay = q{
	WITH e AS (
		SELECT id, decision, blocked_by,
		       context ->> 'user_id' AS u, context ->> 'card' AS c,
		       (context ->> 'amount')::numeric AS amount
		FROM payments.fraud_evaluations),
	w AS (
		SELECT id, decision, blocked_by,
		       count(*) OVER (PARTITION BY u ORDER BY id) - 1 AS earlier_user,
		       coalesce(sum(amount) OVER (PARTITION BY c ORDER BY id
		           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) + amount AS card_total
		FROM e)
	SELECT count(*),
	       count(*) FILTER (WHERE blocked_by IS DISTINCT FROM
	           CASE WHEN earlier_user >= 5 THEN 'user_5'
	                WHEN card_total > 1000 THEN 'card_1000' END)
	FROM w
};
is($node->safe_psql('postgres', $replay), '800|0',
	'every decision is the one the audit trail in id order gives');
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FILTER (WHERE decision = 'approve') > 0,
	       count(*) FILTER (WHERE blocked_by = 'user_5') > 0,
	       count(*) FILTER (WHERE blocked_by = 'card_1000') > 0
	FROM payments.fraud_evaluations}),
	't|t|t',
	'the run approved some attempts and blocked some by each rule');

# A second round, killed in the middle.
my $bg = $node->background_psql('postgres');
$bg->query_until(qr/started/, q{
	\echo started
	SELECT count(*) FROM generate_series(1, 100000) AS g,
		payments.fraud_evaluate(jsonb_build_object('user_id', 1000 + g % 50,
			'card', 'd' || g % 50, 'amount', 1));
});
sleep 1;
$node->stop('immediate');
eval { $bg->quit; };
$node->start;

my $consistency = q{
	SELECT (SELECT count(*) FROM payments.fraud_evaluations),
	       (SELECT count(*) FROM payments.fraud_velocity v
	        WHERE NOT EXISTS (SELECT 1 FROM payments.fraud_evaluations e
	                          WHERE e.id = v.evaluation_id)),
	       (SELECT count(*) FROM payments.fraud_evaluations e
	        WHERE (SELECT count(*) FROM payments.fraud_velocity v
	               WHERE v.evaluation_id = e.id) <> 2)
};
is($node->safe_psql('postgres', $consistency), '800|0|0',
	'after a crash: the committed evaluations, no orphan velocity row, none missing');
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FROM (
		SELECT bt_index_check(c.oid, true) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_am a ON a.oid = c.relam AND a.amname = 'btree'
		WHERE i.indrelid IN ('payments.fraud_evaluations'::regclass,
		                     'payments.fraud_velocity'::regclass)) AS x}),
	'2',
	'amcheck: the B-tree indexes agree with the tables');

# After the restart the engine goes on from the recorded history.
is( $node->safe_psql(
		'postgres', q{
	SELECT decision, blocked_by FROM payments.fraud_evaluate('{"user_id": 1, "card": "new", "amount": 1}')}),
	'block|user_5',
	'after the restart, velocity counts the history recorded before the crash');

$node->stop;
done_testing();
