# Shared shell functions of scripts/demo, scripts/test and test/bench/run:
# installing what is missing, building, and throwaway clusters run as the
# postgres user (initdb refuses root).  Source it; it sets no options.

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKAGES="make gcc clang-14 libclang-rt-14-dev postgresql-$PG_MAJOR
	postgresql-contrib postgresql-server-dev-$PG_MAJOR libssl-dev libipc-run-perl"

say() { printf '%s\n' "$*" >&2; }

# ensure_packages: install missing Debian packages as root; otherwise name them.
ensure_packages() {
	local missing="" p
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		say "missing Debian packages:$missing"
		say "install them with: sudo apt-get update && sudo apt-get install -y$missing"
		say "(or run this command as root and it installs them itself)"
		exit 2
	fi
	say "installing:$missing"
	apt-get update -qq >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2 ||
		{ say "apt-get could not install:$missing"; exit 2; }
}

# build_install: build with PGXS and install into the server's directories.
# Our own builds treat every warning as an error (COPT=-Werror); the
# Makefile does not, so that packagers with newer compilers are not stopped.
build_install() {
	make -C "$REPO" -s PG_CONFIG="$PG_BIN/pg_config" COPT=-Werror >&2 || { say "build failed"; exit 1; }
	local libdir
	libdir=$("$PG_BIN/pg_config" --pkglibdir)
	if [ "$(id -u)" -ne 0 ] && [ ! -w "$libdir" ]; then
		# Someone installed this very build already (sudo make install): use it.
		local script
		script=$(ls "$REPO"/sql/payments--*.sql | grep -v -- '--.*--')
		cmp -s "$REPO/payments.so" "$libdir/payments.so" &&
			cmp -s "$script" "$("$PG_BIN/pg_config" --sharedir)/extension/${script##*/}" &&
			return 0
		say "cannot install into $libdir: run as root (sudo $0), or sudo make install first"
		exit 2
	fi
	make -C "$REPO" -s PG_CONFIG="$PG_BIN/pg_config" COPT=-Werror install >&2 || { say "install failed"; exit 1; }
}

# as_pg CMD...: run a command as the postgres user when we are root.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- env PATH="$PG_BIN:$PATH" "$@"
	else
		env PATH="$PG_BIN:$PATH" "$@"
	fi
}

# scratch_dir: a new temporary directory the cluster's user owns.
scratch_dir() {
	local d
	d=$(mktemp -d /tmp/payments.XXXXXX)
	[ "$(id -u)" -eq 0 ] && chown postgres: "$d"
	echo "$d"
}

# free_port: a TCP port nothing listens on.
free_port() {
	local p=$((20000 + RANDOM % 20000))
	while (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p + 1)); done
	echo $p
}

# cluster_start [EXTRA_CONF]: initdb and start a throwaway cluster with the
# library preloaded; sets CLUSTER_DIR, PGHOST, PGPORT, PGDATABASE, PGUSER.
cluster_start() {
	CLUSTER_DIR=$(scratch_dir)
	export PGHOST=$CLUSTER_DIR PGPORT=$(free_port) PGDATABASE=postgres
	export PGUSER=$([ "$(id -u)" -eq 0 ] && echo postgres || id -un)
	as_pg initdb -D "$CLUSTER_DIR/data" -A trust -E UTF8 --no-locale >/dev/null ||
		{ say "initdb failed"; exit 1; }
	{
		cat "$REPO/test/payments.conf"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$CLUSTER_DIR'"
		echo "port = $PGPORT"
		printf '%s\n' "${1:-}"
	} | as_pg tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
	as_pg pg_ctl -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null ||
		{ cat "$CLUSTER_DIR/server.log" >&2; say "server did not start"; exit 1; }
	trap cluster_stop EXIT
}

# cluster_stop: stop the throwaway cluster and delete it.
cluster_stop() {
	[ -n "${CLUSTER_DIR:-}" ] || return 0
	as_pg pg_ctl -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1
	rm -rf "$CLUSTER_DIR"
	CLUSTER_DIR=
}

# pg_sql: psql as the cluster's user, quiet, stopping at the first error.
pg_sql() {
	as_pg psql -X -q -v ON_ERROR_STOP=1 "$@"
}
