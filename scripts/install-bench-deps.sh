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

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-bench-deps: every package is already installed"
    exit 0
fi

sudo_command=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_command=(sudo)
fi

echo "install-bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_command[@]}" apt-get update -qq
"${sudo_command[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
