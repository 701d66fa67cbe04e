#!/usr/bin/env bash
# Start a throwaway PostgreSQL for tests/data/test_sql.py and print its URI on stdout
# (everything else goes to stderr, so `uri=$(.ci/postgres.sh)` works).
#
# - installs Debian's `postgresql` when no server binaries are found (needs root);
# - one cluster under $SHOPML_PG_DATA (default /tmp/shopml-pg), listening on 127.0.0.1
#   only, on the first free port from 54329 (remembered in its postgresql.conf);
# - role and database `shopml`, password `shopml`, scram-sha-256 from 127.0.0.1 only: a
#   password (not trust) so the tests can check that a wrong one fails without echoing it;
# - idempotent: when the cluster is already up it only prints the URI.
set -euo pipefail

DATA=${SHOPML_PG_DATA:-/tmp/shopml-pg}
log() { echo "postgres.sh: $*" >&2; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN=$(pg_bin)
if [ -z "$BIN" ]; then
  [ "$(id -u)" = 0 ] || { log "PostgreSQL is not installed and this is not root"; exit 1; }
  log "installing Debian postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  BIN=$(pg_bin)
fi

# The server refuses to run as root: as root, everything runs as the package's user.
if [ "$(id -u)" = 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; OWNER=postgres
else as_pg() { "$@"; }; OWNER=$(id -un); fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ ! -s "$DATA/PG_VERSION" ]; then
  PORT=54329
  while listening "$PORT"; do PORT=$((PORT + 1)); done
  log "initdb $DATA (port $PORT)"
  mkdir -p "$DATA" && chown "$OWNER" "$DATA" && chmod 700 "$DATA"
  as_pg "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  # Socket inside the 0700 data dir: only its owner can use the trusted local login.
  # fsync off: a test database that is rebuilt from scratch, never kept.
  as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  as_pg tee "$DATA/pg_hba.conf" >/dev/null <<EOF
local all    postgres               trust
host  shopml shopml   127.0.0.1/32  scram-sha-256
EOF
fi
PORT=$(sed -n 's/^port = \([0-9]*\).*/\1/p' "$DATA/postgresql.conf" | tail -n 1)

if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  if listening "$PORT"; then log "port $PORT is taken by another server; remove $DATA to pick a new one"; exit 1; fi
  log "starting on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null
fi
for _ in $(seq 60); do
  "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
  sleep 1
done
"$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || { log "not accepting connections; see $DATA/server.log"; exit 1; }

psql_admin() { as_pg "$BIN/psql" -h "$DATA" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'shopml'")" ]; then
  psql_admin -c "CREATE ROLE shopml LOGIN PASSWORD 'shopml'"
fi
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'shopml'")" ]; then
  psql_admin -c "CREATE DATABASE shopml OWNER shopml"
fi
echo "postgresql://shopml:shopml@127.0.0.1:$PORT/shopml"
