# test/bench/citus.sh: idempotency on one node against a Citus cluster,
# sourced by test/bench/run (which provides bench_sql, bench_check,
# bench_pgbench and a single-node cluster with payments installed).
#
# pgbench, 8 clients, -M prepared: a new key begun and completed with its
# owner token (idempotency_ours.pgbench), on the run's single node, and
# through the coordinator of a coordinator + 2 workers cluster on this
# machine after payments.citus_distribute(); and on the cluster, the bare
# SQL minimum on a table of the same shape distributed the same way
# (idempotency_bare_citus.pgbench).  Three rounds each, alternating; the
# best of each counts.  There is no target: on one machine with 2 cores
# the cluster's nodes share the cores that one node has to itself, and
# every call crosses a connection to a worker, so the ratios measure what
# distribution costs here, not what it gains on real hardware.  Skipped
# when Citus is not installed.

CITUS_SECONDS=${CITUS_SECONDS:-8}

# citus_node_start NAME PORT: a cluster node with Citus and payments
# preloaded, listening on loopback TCP for the other nodes.
citus_node_start() {
	local dir=$CITUS_DIR/$1
	as_pg initdb -D "$dir" -A trust -E UTF8 --no-locale >/dev/null || return 1
	as_pg tee -a "$dir/postgresql.conf" >/dev/null <<EOF
shared_preload_libraries = 'citus,payments'
listen_addresses = '127.0.0.1'
unix_socket_directories = '$CITUS_DIR'
port = $2
max_connections = 100
max_prepared_transactions = 100
synchronous_commit = off
citus.node_conninfo = 'sslmode=disable'
payments.reconcile_time = ''
EOF
	as_pg pg_ctl -D "$dir" -l "$dir.log" -w start >/dev/null &&
		PGHOST=$CITUS_DIR PGPORT=$2 pg_sql -c "CREATE EXTENSION citus"
}

# citus_stop: stop the cluster's nodes and delete them.
citus_stop() {
	local n
	for n in coordinator worker1 worker2; do
		[ -f "$CITUS_DIR/$n/postmaster.pid" ] &&
			as_pg pg_ctl -D "$CITUS_DIR/$n" -m immediate -w stop >/dev/null 2>&1
	done
	rm -rf "$CITUS_DIR"
}

citus_lib=$("$PG_BIN/pg_config" --pkglibdir)/citus.so
if [ ! -e "$citus_lib" ]; then
	say "citus: skipped, Citus is not installed ($citus_lib is missing; see ../shared/tools/citus-build.sh)"
else
	CITUS_DIR=$(scratch_dir)
	trap 'citus_stop; cluster_stop' EXIT
	citus_ports=($(free_port) $(free_port) $(free_port))
	citus_node_start coordinator "${citus_ports[0]}" &&
		citus_node_start worker1 "${citus_ports[1]}" &&
		citus_node_start worker2 "${citus_ports[2]}" &&
		PGHOST=$CITUS_DIR PGPORT=${citus_ports[0]} pg_sql -o /dev/null \
			-c "SELECT citus_set_coordinator_host('127.0.0.1', ${citus_ports[0]})" \
			-c "SELECT citus_add_node('127.0.0.1', ${citus_ports[1]})" \
			-c "SELECT citus_add_node('127.0.0.1', ${citus_ports[2]})" \
			-c "CREATE EXTENSION payments" \
			-c "SELECT payments.citus_distribute()" \
			-c "CREATE SCHEMA bare" \
			-c "CREATE TABLE bare.keys (LIKE payments.idempotency_keys INCLUDING ALL)" \
			-c "SELECT create_distributed_table('bare.keys', 'key', colocate_with => 'payments.idempotency_keys')" ||
		{ say "citus: the cluster did not start"; BENCH_MISSED=$((BENCH_MISSED + 1)); }

	citus_best() { awk -v a="${1:-0}" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }
	citus_one=""
	citus_cluster=""
	citus_bare=""
	for citus_round in 1 2 3; do
		citus_one=$(citus_best "$citus_one" "$(bench_pgbench "one node: begin + complete" \
			"$BENCH_DIR/idempotency_ours.pgbench" 8 "$CITUS_SECONDS" -M prepared)")
		citus_cluster=$(citus_best "$citus_cluster" "$(PGHOST=$CITUS_DIR PGPORT=${citus_ports[0]} \
			bench_pgbench "coordinator + 2 workers: begin + complete" \
			"$BENCH_DIR/idempotency_ours.pgbench" 8 "$CITUS_SECONDS" -M prepared)")
		citus_bare=$(citus_best "$citus_bare" "$(PGHOST=$CITUS_DIR PGPORT=${citus_ports[0]} \
			bench_pgbench "coordinator + 2 workers: bare INSERT ON CONFLICT + UPDATE" \
			"$BENCH_DIR/idempotency_bare_citus.pgbench" 8 "$CITUS_SECONDS" -M prepared)")
	done
	PGHOST=$CITUS_DIR PGPORT=${citus_ports[0]} bench_check "citus: every key completed, none in the shell table" \
		"SELECT count(*) FILTER (WHERE state <> 'completed') || ' ' || pg_relation_size('payments.idempotency_keys') FROM payments.idempotency_keys" "0 0"
	printf '%-56s one node=%s tps  cluster=%s tps  cluster/one=%s (recorded; no target)\n' \
		"citus: begin+complete, 8 clients" "$citus_one" "$citus_cluster" \
		"$(awk -v a="$citus_cluster" -v b="$citus_one" 'BEGIN { printf "%.2f", a / b }')"
	printf '%-56s payments=%s tps  bare SQL=%s tps  ratio=%s (recorded; no target)\n' \
		"citus: on the cluster, payments vs bare SQL" "$citus_cluster" "$citus_bare" \
		"$(awk -v a="$citus_cluster" -v b="$citus_bare" 'BEGIN { printf "%.2f", a / b }')"
	citus_stop
	trap cluster_stop EXIT
fi
