#!/usr/bin/env bash
# Installs the Debian bookworm packages that building, testing and
# benchmarking Conveyor need. Safe to run again: it installs only what is
# missing. Uses sudo when not run as root.
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config
    libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
    libsqlite3-dev sqlite3 libpq-dev libicu-dev libstemmer-dev
    libspdlog-dev libfmt-dev libcli11-dev libssl-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    python3 python3-pytest
    postgresql curl
    prometheus
)

"$(dirname "$0")/apt-install-missing.sh" install-deps "${packages[@]}"
