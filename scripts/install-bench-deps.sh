#!/usr/bin/env bash
# Installs the Debian bookworm packages that `make bench` needs beyond those
# of scripts/install-deps.sh: the load generator, the plotter, and the
# reference service (FastAPI on uvicorn, Celery with a Redis broker, psycopg2
# for PostgreSQL). Safe to run again: it installs only what is missing. Uses
# sudo when not run as root.
set -euo pipefail

packages=(
    wrk gnuplot-nox
    redis-server
    python3 python3-fastapi python3-pydantic python3-starlette
    uvicorn python3-uvicorn python3-uvloop python3-httptools
    python3-celery python3-kombu python3-billiard python3-redis
    python3-psycopg2
)

"$(dirname "$0")/apt-install-missing.sh" install-bench-deps "${packages[@]}"
