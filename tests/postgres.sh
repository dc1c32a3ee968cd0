# A real PostgreSQL server for the tests: Debian's (installed, pinned to its major version,
# when absent and we are root, as in CI), a cluster of its own in a temporary directory, on a
# free port and a Unix socket. Sourced by tests/run.sh after tests/env.sh; exports where it is
# and `stop_test_postgres`, which run.sh calls on exit.
#
# MCPS_TEST_POSTGRES_URL: the server's `postgres` database as the user `mcps`, by TCP; tests
#   create a database of their own in it.
# MCPS_TEST_POSTGRES_SOCKET: the directory of its Unix socket.
# MCPS_TEST_POSTGRES_CA: the authority that signed its TLS certificate (for `localhost`).

pg_major=15
pg_bin="/usr/lib/postgresql/$pg_major/bin"
if [ ! -x "$pg_bin/postgres" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "PostgreSQL $pg_major is not installed and we are not root to install it: apt-get install postgresql-$pg_major" >&2
        return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "postgresql-$pg_major" > /dev/null
fi

pg_dir="$(mktemp -d -t mcps-postgres.XXXXXX)"
pg_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
pg_password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
printf '%s\n' "$pg_password" > "$pg_dir/password"
# TLS with the tests' own authority (tests/tls.sh); the server's copy of its key is the
# cluster owner's.
[ -n "${MCPS_TEST_TLS_CA:-}" ] || source tests/tls.sh
pg_tls="$pg_dir/tls"
mkdir "$pg_tls"
cp "$MCPS_TEST_TLS_CA" "$pg_tls/ca.pem"
cp "$MCPS_TEST_TLS_CERT" "$pg_tls/server.pem"
cp "$MCPS_TEST_TLS_KEY" "$pg_tls/server.key"
chmod 600 "$pg_tls/server.key"
# PostgreSQL will not run as root: as root, the cluster belongs to Debian's `postgres` user.
as_owner=()
if [ "$(id -u)" = 0 ]; then
    id postgres > /dev/null 2>&1 || useradd --system --no-create-home postgres
    chown -R postgres "$pg_dir"
    as_owner=(runuser -u postgres --)
fi
"${as_owner[@]}" "$pg_bin/initdb" --pgdata="$pg_dir/data" --username=mcps --pwfile="$pg_dir/password" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 > "$pg_dir/initdb.log" 2>&1 \
    || { cat "$pg_dir/initdb.log" >&2; return 1; }
# fsync off: a test cluster need not survive the machine's power loss, and it saves seconds.
"${as_owner[@]}" "$pg_bin/pg_ctl" --pgdata="$pg_dir/data" --log="$pg_dir/server.log" --wait \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 -c ssl=on -c ssl_cert_file=$pg_tls/server.pem -c ssl_key_file=$pg_tls/server.key" \
    start > /dev/null || { cat "$pg_dir/server.log" >&2; return 1; }

export MCPS_TEST_POSTGRES_URL="postgresql://mcps:$pg_password@127.0.0.1:$pg_port/postgres"
export MCPS_TEST_POSTGRES_SOCKET="$pg_dir"
export MCPS_TEST_POSTGRES_CA="$pg_tls/ca.pem"

stop_test_postgres() {
    "${as_owner[@]}" "$pg_bin/pg_ctl" --pgdata="$pg_dir/data" --mode=immediate stop > /dev/null 2>&1 || true
    rm -rf "$pg_dir"
}
