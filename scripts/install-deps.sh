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
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: every package is already installed"
    exit 0
fi

sudo_command=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_command=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_command[@]}" apt-get update -qq
"${sudo_command[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
