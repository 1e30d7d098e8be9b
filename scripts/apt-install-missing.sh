#!/usr/bin/env bash
# Usage: apt-install-missing.sh LABEL PACKAGE...
# Installs those of the named Debian packages that are not installed yet,
# with apt-get through sudo when not run as root. LABEL starts each message.
set -euo pipefail

label="$1"
shift

missing=()
for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "$label: every package is already installed"
    exit 0
fi

sudo_command=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_command=(sudo)
fi

echo "$label: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_command[@]}" apt-get update -qq
"${sudo_command[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
