#!/usr/bin/env bash
# Usage: runtime-packages.sh BINARY
# Prints the Debian packages that own the shared libraries BINARY loads, one
# a line, sorted: what a system needs installed to run BINARY. Exits 1 when
# a library is missing or belongs to no package.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BINARY" >&2
    exit 2
fi

# Prints the package that owns one library file. dpkg records some
# libraries under /lib and others under /usr/lib. Bookworm merges /usr, so
# both paths name the same file, and each spelling is tried.
owner_of() {
    local library="$1" candidate owner
    for candidate in "$library" "$(readlink -f "$library")" "/usr${library}" "${library#/usr}"; do
        if owner=$(dpkg-query --search "$candidate" 2>/dev/null); then
            owner="${owner%%$'\n'*}"
            echo "${owner%%:*}"
            return 0
        fi
    done
    return 1
}

ldd_output=$(ldd "$1")
if grep -q "not found" <<<"$ldd_output"; then
    echo "runtime-packages.sh: $1 needs libraries that are not installed:" >&2
    grep "not found" <<<"$ldd_output" >&2
    exit 1
fi

packages=()
while read -r library; do
    if ! package=$(owner_of "$library"); then
        echo "runtime-packages.sh: no installed package owns $library" >&2
        exit 1
    fi
    packages+=("$package")
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$ldd_output")

printf '%s\n' "${packages[@]}" | sort -u
