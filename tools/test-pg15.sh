#!/usr/bin/env bash
# make test-pg15: the suite (or the tests named as arguments) on Debian's PostgreSQL 15, the major version
# Supabase runs, instead of the embedded PostgreSQL 18.
#
# Installs postgresql-15 with apt-get when it is missing (root), initialises a throwaway cluster in a
# temporary folder (in /dev/shm when it has room, see below) as the `postgres` user (trust authentication,
# listening on 127.0.0.1 and a socket in that folder only, without fsync: it is deleted afterwards), points
# the suite at it with
# XPBASE_TEST_SERVER_URL (tests/conftest.py) and stops and deletes the cluster at the end.
set -euo pipefail

PG_BIN=${PG15_BIN:-/usr/lib/postgresql/15/bin}
PYTHON=${PYTHON:-.venv/bin/python}

if [ ! -x "$PG_BIN/postgres" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL 15 is not installed in $PG_BIN; run as root (apt-get install postgresql-15)" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15
fi

# As the postgres user when we are root (initdb refuses root); as ourselves otherwise.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The cluster lives where the embedded test server's would (tests/conftest.py, test_data_parent: /dev/shm when it
# has room, since clones of the template slow down on ext4 without a journal; XPBASE_TEST_DATA_DIR names
# another folder).
PARENT=$("$PYTHON" -c 'import tempfile; from tests.conftest import test_data_parent
print(test_data_parent() or tempfile.gettempdir())')
ROOT=$(mktemp -d "$PARENT/xpbase-pg15.XXXXXX")
chmod 755 "$ROOT"
mkdir "$ROOT/data" "$ROOT/socket"
if [ "$(id -u)" = 0 ]; then chown postgres: "$ROOT/data" "$ROOT/socket"; fi
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cleanup() {
  as_pg "$PG_BIN/pg_ctl" -D "$ROOT/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$ROOT"
}
trap cleanup EXIT

as_pg "$PG_BIN/initdb" -D "$ROOT/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$ROOT/data" -l "$ROOT/data/server.log" -w \
  -o "-p $PORT -k $ROOT/socket -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
      -c full_page_writes=off -c max_connections=300 -c shared_preload_libraries=pg_stat_statements" start
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT ($ROOT)"

# The API roles are cluster-wide: create them once here (compat/auth.sql in a scratch database), or two
# xdist workers that build their template databases at the same moment race to create them.
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c 'create database xpbase_roles'
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d xpbase_roles -f supabase/compat/auth.sql
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c 'drop database xpbase_roles'

export XPBASE_TEST_SERVER_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
"$PYTHON" -m pytest "${@:-tests}"
