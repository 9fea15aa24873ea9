# 140_upgrade.pl: ALTER EXTENSION payments UPDATE from every released
# version gives exactly what CREATE EXTENSION of the current version
# gives (tables, columns, constraints, indexes, functions with their
# bodies and privileges, triggers, comments, the extension's members and
# dumped tables), and keeps the rows; a saga and the inbox work after it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'payments'
payments.reconcile_time = ''
});
$node->start;

my $current = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'payments'});
my @released = split /\n/, $node->safe_psql('postgres', q{
	SELECT version FROM pg_available_extension_versions
	WHERE name = 'payments' AND version <> (SELECT default_version
		FROM pg_available_extensions WHERE name = 'payments')
	ORDER BY version});
ok(@released > 0, "released versions to upgrade from: @released");

# the extension's objects, one line each, in a fixed order
my $shape = q{
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
		SELECT 'column ' || c.relname || '.' || a.attname || ' '
			|| format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' '
			|| coalesce(a.attcollation::regcollation::text, '') || ' '
			|| coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_class c
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
		WHERE c.relnamespace = 'payments'::regnamespace AND c.relkind <> 'i'
		UNION ALL
		SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
			|| pg_get_constraintdef(oid)
		FROM pg_constraint WHERE connamespace = 'payments'::regnamespace
		UNION ALL
		SELECT 'index ' || pg_get_indexdef(i.indexrelid)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relnamespace = 'payments'::regnamespace
		UNION ALL
		SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid))
			|| ' ' || coalesce(p.proacl::text, '') || ' '
			|| coalesce(obj_description(p.oid, 'pg_proc'), '')
		FROM pg_proc p WHERE p.pronamespace = 'payments'::regnamespace
		UNION ALL
		SELECT 'trigger ' || pg_get_triggerdef(t.oid)
		FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		WHERE c.relnamespace = 'payments'::regnamespace AND NOT t.tgisinternal
		UNION ALL
		SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' '
			|| coalesce(c.relacl::text, '') || ' ' || coalesce(obj_description(c.oid, 'pg_class'), '')
		FROM pg_class c WHERE c.relnamespace = 'payments'::regnamespace
		UNION ALL
		SELECT 'member ' || pg_describe_object(classid, objid, objsubid)
		FROM pg_depend
		WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'payments')
		UNION ALL
		SELECT 'dumped ' || unnest(extconfig)::regclass
		FROM pg_extension WHERE extname = 'payments'
	) AS s(x)
};

$node->safe_psql('postgres', 'CREATE EXTENSION payments');
my $want = $node->safe_psql('postgres', $shape);

for my $from (@released)
{
	my $db = "from_" . ($from =~ s/\W/_/gr);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION payments VERSION '$from';
		SELECT payments.saga_start('checkout', '[{"name": "a"}, {"name": "b"}]', '{}', saga_id => 'old-1');
		SELECT payments.saga_record('old-1', 'a', 'succeeded');
		INSERT INTO payments.webhook_inbox (endpoint, event_id, headers, body)
		VALUES ('stripe', 'evt_old', '{}', 'x');
		SELECT payments.idempotency_begin('old-key', '{}');
	});
	$node->safe_psql($db, 'ALTER EXTENSION payments UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'payments'}),
		$current, "$from updated to $current");
	is($node->safe_psql($db, $shape), $want, "$from updated is exactly $current installed");
	is($node->safe_psql($db, q{
		SELECT (SELECT count(*) FROM payments.saga_events WHERE saga_id = 'old-1') || ' '
			|| (SELECT count(*) FROM payments.webhook_inbox) || ' '
			|| (SELECT count(*) FROM payments.idempotency_keys)}),
		'2 1 1', "$from: the rows are kept");
	is($node->safe_psql($db, q{
		SELECT payments.saga_record('old-1', 'b', 'succeeded');
		INSERT INTO payments.webhook_inbox (endpoint, event_id, headers, body)
		VALUES ('stripe', 'evt_old', '{}', 'y') ON CONFLICT DO NOTHING;
		SELECT state || ' ' || (SELECT count(*) FROM payments.webhook_inbox)
		FROM payments.sagas WHERE id = 'old-1'}),
		"completed\ncompleted 1", "$from: a saga goes on and the inbox still deduplicates");
}

$node->stop;
done_testing();
