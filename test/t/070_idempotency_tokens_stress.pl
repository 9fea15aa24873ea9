# 070_idempotency_tokens_stress.pl: 8 clients work on 40 keys with leases
# of 20 ms and pauses of up to 40 ms between begin and complete, so owners
# overrun their leases and keys are taken over while the late owner is
# still working.  Every complete passes the caller's owner token.  Then:
# each key was completed at most once, by the owner whose token it stores
# in its response; every other complete of a taken-over owner got PM003;
# keys still in flight were completed by no one; and both indexes agree
# with the table (amcheck).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('idempotency_tokens');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'payments'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION payments;
	CREATE EXTENSION amcheck;
	CREATE TABLE stress_log (k int, token uuid, event text);
	CREATE PROCEDURE stress(k int) LANGUAGE plpgsql AS $$
	DECLARE
		r record;
	BEGIN
		BEGIN
			SELECT outcome, token INTO r FROM payments.idempotency_begin('s-' || k,
				jsonb_build_object('k', k), lease => '20 milliseconds');
		EXCEPTION WHEN SQLSTATE 'PM002' THEN
			RETURN;
		END;
		COMMIT;
		IF r.outcome NOT IN ('started', 'resumed') THEN
			RETURN;
		END IF;
		INSERT INTO stress_log VALUES (k, r.token, r.outcome);
		COMMIT;
		PERFORM pg_sleep(random() * 0.04);
		BEGIN
			PERFORM payments.idempotency_checkpoint('s-' || k, 'charged', token => r.token);
			PERFORM payments.idempotency_complete('s-' || k,
				jsonb_build_object('by', r.token), token => r.token);
			INSERT INTO stress_log VALUES (k, r.token, 'completed');
		EXCEPTION WHEN SQLSTATE 'PM003' THEN
			INSERT INTO stress_log VALUES (k, r.token, 'lost');
		END;
	END $$;
});

$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=150',
	0, [qr{processed: 1200/1200}], [],
	'8 clients, 40 keys, leases shorter than the work',
	{ 'tokens_stress' => "\\set k random(1, 40)\nCALL stress(:k);\n" });

my $summary = $node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE event = 'started') AS started,
	       count(*) FILTER (WHERE event = 'resumed') AS resumed,
	       count(*) FILTER (WHERE event = 'completed') AS completed,
	       count(*) FILTER (WHERE event = 'lost') AS lost
	FROM stress_log});
note "started|resumed|completed|lost: $summary";
my ($started, $resumed, $completed, $lost) = split /\|/, $summary;
cmp_ok($resumed, '>', 0, 'owners overran their leases: keys were taken over');
cmp_ok($lost, '>', 0, 'late owners tried to complete: PM003');

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT k FROM stress_log WHERE event = 'completed'
	                      GROUP BY k HAVING count(*) > 1) AS twice}),
	'0', 'no key was completed twice');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM stress_log l
	JOIN payments.idempotency_keys i ON i.key = 's-' || l.k
	WHERE l.event = 'completed'
	  AND (i.state <> 'completed' OR i.response ->> 'by' <> l.token::text
	       OR i.owner_token <> l.token)}),
	'0', 'each completed key stores the response of the owner that completed it');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM payments.idempotency_keys i
	WHERE i.state = 'completed'
	  AND NOT EXISTS (SELECT 1 FROM stress_log l
	                  WHERE 's-' || l.k = i.key AND l.event = 'completed')}),
	'0', 'no completed key without its owner\'s successful complete');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM stress_log l
	WHERE l.event = 'lost' AND NOT EXISTS (
		SELECT 1 FROM stress_log t WHERE t.k = l.k AND t.event = 'resumed'
		  AND t.token <> l.token)}),
	'0', 'every lost complete had a taker with another token');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM payments.idempotency_keys
	WHERE state = 'in_flight' AND response IS NOT NULL}),
	'0', 'keys still in flight hold no response');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
		SELECT bt_index_check(c.oid, true) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'payments.idempotency_keys'::regclass) AS checked}),
	'2', 'amcheck: both indexes agree with the table');
unlike(slurp_file($node->logfile), qr/PANIC|TRAP|terminated by signal/, 'no crash');

$node->stop;
done_testing();
