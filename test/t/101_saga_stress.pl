# 101_saga_stress.pl: 8 orchestrators race on 200 sagas.  Each call asks
# saga_next and records a random outcome (success, retriable failure,
# failure) for the step it was given; racing on one saga, the loser gets
# PM030 and nothing changes.  Afterwards every saga's log must replay to its
# row: each event starts from the state the previous one left, the last one
# left the saga's state, one event per accepted call, each step succeeded
# at most once and in order, compensations only of steps that succeeded,
# each at most once and in reverse order, and attempts counted from 1 up.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('saga_stress');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'payments'
payments.reconcile_time = ''
max_connections = 40
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION payments;
	SELECT payments.saga_start('checkout',
		'[{"name": "reserve"}, {"name": "fraud", "compensable": false}, {"name": "authorize"},
		  {"name": "capture"}, {"name": "ship", "compensable": false}]',
		jsonb_build_object('n', g), 's' || g)
	FROM generate_series(1, 200) g;
	CREATE TABLE accepted (saga_id text, step text, outcome text, state text);
	CREATE TABLE lost (saga_id text);
	-- one orchestrator's move: what saga_next says, with a random outcome;
	-- a lost race (PM030) changes nothing and is not counted
	CREATE FUNCTION move(id text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE
		n record;
		r float8 := random();
		outcome text := CASE WHEN r < 0.7 THEN 'succeeded' ELSE 'failed' END;
		detail jsonb := CASE WHEN r >= 0.85 THEN '{"retriable": true}' END;
		state text;
	BEGIN
		SELECT * INTO n FROM payments.saga_next(id);
		IF n.action = 'done' THEN
			RETURN 'done';
		END IF;
		state := payments.saga_record(id, n.step, outcome, detail);
		INSERT INTO accepted VALUES (id, n.step, outcome, state);
		RETURN state;
	EXCEPTION WHEN SQLSTATE 'PM030' THEN
		INSERT INTO lost VALUES (id);
		RETURN 'lost';
	END
	$$;
});

$node->pgbench('--no-vacuum --client=8 --jobs=2 --transactions=300',
	0, [qr{processed: 2400/2400}], [],
	'8 orchestrators make 2,400 moves on 200 sagas',
	{ 'saga_moves' => q{\set s random(1, 200)
SELECT move('s' || :s);
} });

my %check = (
	'each event starts where the previous one ended' => q{
		SELECT count(*) FROM (
			SELECT from_state, lag(to_state) OVER (PARTITION BY saga_id ORDER BY id) AS prev, event
			FROM payments.saga_events) e
		WHERE event <> 'started' AND from_state IS DISTINCT FROM prev},
	'the last event left the saga in its state' => q{
		SELECT count(*) FROM payments.sagas s
		WHERE s.state <> (SELECT to_state FROM payments.saga_events e
		                  WHERE e.saga_id = s.id ORDER BY id DESC LIMIT 1)},
	'one event per accepted call, and none for a lost race' => q{
		SELECT abs((SELECT count(*) FROM accepted) -
		           (SELECT count(*) FROM payments.saga_events WHERE event <> 'started'))},
	'a step succeeds at most once' => q{
		SELECT count(*) FROM (
			SELECT saga_id, step FROM payments.saga_events WHERE event = 'step_succeeded'
			GROUP BY 1, 2 HAVING count(*) > 1) x},
	'steps succeed in order' => q{
		SELECT count(*) FROM (
			SELECT e.saga_id, e.id, o.ord,
			       lag(o.ord) OVER (PARTITION BY e.saga_id ORDER BY e.id) AS prev
			FROM payments.saga_events e
			JOIN payments.sagas s ON s.id = e.saga_id,
			     LATERAL (SELECT ord FROM jsonb_array_elements(s.steps) WITH ORDINALITY AS t(v, ord)
			              WHERE v ->> 'name' = e.step) o
			WHERE e.event = 'step_succeeded') x
		WHERE x.ord <> COALESCE(x.prev, 0) + 1},
	'only succeeded, compensable steps are compensated, each once, in reverse order' => q{
		SELECT count(*) FROM (
			SELECT e.saga_id, e.step, o.ord, o.v,
			       lag(o.ord) OVER (PARTITION BY e.saga_id ORDER BY e.id) AS prev,
			       EXISTS (SELECT 1 FROM payments.saga_events p
			               WHERE p.saga_id = e.saga_id AND p.step = e.step
			                 AND p.event = 'step_succeeded') AS succeeded
			FROM payments.saga_events e
			JOIN payments.sagas s ON s.id = e.saga_id,
			     LATERAL (SELECT ord, v FROM jsonb_array_elements(s.steps) WITH ORDINALITY AS t(v, ord)
			              WHERE v ->> 'name' = e.step) o
			WHERE e.event = 'compensation_succeeded') x
		WHERE NOT x.succeeded OR x.v ->> 'compensable' = 'false'
		   OR x.ord >= COALESCE(x.prev, 1000)},
	'attempts count from 1 without gaps' => q{
		SELECT count(*) FROM (
			SELECT attempt, row_number() OVER (
				PARTITION BY saga_id, step, event LIKE 'compensation%' ORDER BY id) AS nth,
			       event
			FROM payments.saga_events WHERE step IS NOT NULL) x
		WHERE attempt <> nth},
	'the row agrees with its log' => q{
		SELECT count(*) FROM payments.sagas s
		WHERE s.state IN ('completed') AND
		      (SELECT count(*) FROM payments.saga_events e
		       WHERE e.saga_id = s.id AND e.event = 'step_succeeded') <> 5},
);
for my $name (sort keys %check)
{
	is($node->safe_psql('postgres', $check{$name}), '0', $name);
}

# the race was real: some calls lost, and the sagas went every way
cmp_ok($node->safe_psql('postgres', 'SELECT count(DISTINCT state) FROM payments.sagas'),
	'>=', 2, 'the sagas ended in more than one state');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM accepted'), '>', 500,
	'many moves were accepted');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM lost'), '>', 0,
	'and some lost a race (PM030)');

$node->stop;
done_testing();
