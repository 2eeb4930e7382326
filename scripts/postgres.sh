#!/usr/bin/env bash
# Starts (or reuses) a throw-away PostgreSQL cluster for the test suite and prints its SQLAlchemy URL.
# Needs Debian's `postgresql` package (server binaries); no system service is used. Exit 3: none installed.
set -euo pipefail
DIR="${COUNTERFEIT_TEST_PG_DIR:-/tmp/counterfeit-test-pg}"
PORT="${COUNTERFEIT_TEST_PG_PORT:-55432}"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  exit 3
fi
RUN=()
if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
  RUN=(runuser -u postgres --)
  mkdir -p "$DIR" && chown postgres "$DIR"
else
  mkdir -p "$DIR"
fi
if ! "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  [ -f "$DIR/data/PG_VERSION" ] || "${RUN[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  # fsync off: a test cluster only; the tests kill service processes, never this server.
  "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" start >/dev/null
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
