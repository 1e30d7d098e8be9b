#!/bin/bash
# Creates the test cluster on first start, then runs the postmaster as PID 1
# on 127.0.0.1:$PGPORT. Its database `conveyor` belongs to the superuser
# postgres, and any local connection is trusted.
set -euo pipefail

bin=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    "$bin/initdb" --pgdata "$PGDATA" --auth=trust --username=postgres \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync --no-instructions
    "$bin/postgres" --single -D "$PGDATA" postgres <<<"CREATE DATABASE conveyor;" >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA" -p "$PGPORT" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp \
    -c fsync=off -c max_connections=200
