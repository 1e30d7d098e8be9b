#!/usr/bin/env bash
# Installs the Debian bookworm packages that building, testing and
# benchmarking Conveyor need. Safe to run again: it installs only what is
# missing. Uses sudo when not run as root.
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config
    libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
    libsqlite3-dev sqlite3 libpq-dev libicu-dev libstemmer-dev
    libspdlog-dev libfmt-dev libcli11-dev nettle-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    python3 python3-pytest python3-jsonschema
    postgresql curl
    prometheus
    clang-14 libclang-rt-14-dev
)

"$(dirname "$0")/apt-install-missing.sh" install-deps "${packages[@]}"

# Node.js and npm run the OpenAPI linter (tests/openapi). A machine that
# already has an npm, such as one from NodeSource's nodejs package, which
# conflicts with Debian's npm package, keeps it.
if ! command -v npm >/dev/null 2>&1; then
    "$(dirname "$0")/apt-install-missing.sh" install-deps nodejs npm
fi

# docker-compose checks deploy/compose.yaml (`docker-compose config` needs no
# Docker daemon) and python3-yaml reads its output in tests/deploy.
# apt-install-missing.sh skips recommended packages, so Docker's daemon
# (docker.io), which docker-compose recommends, is not installed with it.
"$(dirname "$0")/apt-install-missing.sh" install-deps docker-compose python3-yaml
