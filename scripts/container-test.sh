#!/usr/bin/env bash
# Builds the Conveyor container image and tests it in real containers (the
# `make container-test` target). Each step is skipped when its result exists:
#   1. installs Debian's docker.io, debootstrap and pytest when missing;
#   2. uses a Docker engine that already responds, or starts Debian's dockerd
#      on unix:///tmp/docker.sock without a bridge or iptables rules, and
#      stops it by its PID at the end;
#   3. when the engine lacks debian:bookworm or debian:bookworm-slim, builds
#      them with debootstrap from the Debian mirror that this machine's apt
#      uses (the tarballs are cached under the work folder);
#   4. builds the project image and a PostgreSQL test image;
#   5. runs tests/container/test_image.py, which starts every container with
#      --network host on 127.0.0.1 ports and removes them at the end.
#
# Environment:
#   CONVEYOR_CONTAINER_WORK  cache and logs (default: build/container-test)
#   CONVEYOR_DEBIAN_MIRROR   Debian mirror for debootstrap (default: apt's)
#   CONVEYOR_CONTAINER_PULL  1: pull the Debian base images from the
#                            configured registry instead of building them
#   CONVEYOR_IMAGE           tag of the project image
#                            (default: conveyor:container-test)
#   JOBS                     compile jobs inside the build (default: 2)
set -euo pipefail

repository=$(cd "$(dirname "$0")/.." && pwd)
work=${CONVEYOR_CONTAINER_WORK:-$repository/build/container-test}
image=${CONVEYOR_IMAGE:-conveyor:container-test}
postgres_image=conveyor-container-test/postgres:15
jobs=${JOBS:-2}
socket_path=/tmp/docker.sock
run_id="$(date +%Y%m%d%H%M%S)-$$"
label=conveyor-container-test
python=/usr/bin/python3

mkdir -p "$work"
docker_client=""
dockerd_pid=""
exec_root=""

step_started=$SECONDS
step() {
    echo "container-test: $* ($((SECONDS - step_started)) s since the previous step)"
    step_started=$SECONDS
}

# Runs a long command with its output in a log file; prints the log's tail
# when the command fails.
run_logged() {
    local log="$1"
    shift
    if ! "$@" >"$log" 2>&1; then
        echo "container-test: '$*' failed; the end of $log:" >&2
        tail -n 60 "$log" >&2
        return 1
    fi
}

engine_responds() {
    [ -n "$docker_client" ] && timeout 20 "$docker_client" info >/dev/null 2>&1
}

# Removes only what this run made: the containers that carry its label.
remove_containers() {
    local ids
    ids=$(timeout 30 "$docker_client" ps --all --quiet --filter "label=$label=$run_id" 2>/dev/null || true)
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086 # one argument per container id
        timeout 120 "$docker_client" rm --force --volumes $ids >/dev/null 2>&1 || true
    fi
}

# Exits unless the script runs as root, which starting dockerd and running
# debootstrap need.
require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "container-test: $1 needs root; run make container-test as root" >&2
        exit 1
    fi
}

# Prints the mount points under a folder, deepest first.
mounts_under() {
    awk -v prefix="$1/" 'index($2 "/", prefix) == 1 { print $2 }' /proc/mounts | sort -r
}

stop_dockerd() {
    [ -n "$dockerd_pid" ] || return 0
    local containerd_pid=""
    if [ -r "$exec_root/containerd/containerd.pid" ]; then
        containerd_pid=$(cat "$exec_root/containerd/containerd.pid")
    fi
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
        echo "container-test: dockerd ($dockerd_pid) did not stop within 30 s; sending SIGKILL" >&2
        kill -KILL "$dockerd_pid" 2>/dev/null || true
        if [ -n "$containerd_pid" ]; then
            kill -KILL "$containerd_pid" 2>/dev/null || true
        fi
    fi
    wait "$dockerd_pid" 2>/dev/null || true
    dockerd_pid=""
    # dockerd leaves the host network namespace bind-mounted in its exec
    # root (netns/default) after it exits.
    local mount_point
    while read -r mount_point; do
        [ -n "$mount_point" ] && umount "$mount_point" 2>/dev/null || true
    done < <(mounts_under "$exec_root")
    if [ -n "$(mounts_under "$exec_root")" ]; then
        echo "container-test: $exec_root still has mounts; leaving it in place" >&2
    else
        rm -rf "$exec_root"
    fi
}

cleanup() {
    local status=$?
    if [ -n "$docker_client" ]; then
        remove_containers
    fi
    stop_dockerd
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. packages -------------------------------------------------------------
"$repository/scripts/apt-install-missing.sh" container-test python3 python3-pytest

# --- 2. Docker engine ----------------------------------------------------------
docker_client=$(command -v docker || true)
if engine_responds; then
    echo "container-test: using the running Docker engine (${DOCKER_HOST:-its default socket})"
elif docker_client=$(command -v docker || true) && [ -S "$socket_path" ] \
    && DOCKER_HOST="unix://$socket_path" engine_responds; then
    export DOCKER_HOST="unix://$socket_path"
    echo "container-test: using the Docker engine on $DOCKER_HOST"
else
    require_root "starting dockerd"
    if ! command -v dockerd >/dev/null 2>&1; then
        "$repository/scripts/apt-install-missing.sh" container-test docker.io
    fi
    # Debian's client matches Debian's engine; another client on the PATH
    # may be newer and need plug-ins that Debian does not ship.
    docker_client=/usr/bin/docker
    [ -x "$docker_client" ] || docker_client=$(command -v docker)
    export DOCKER_HOST="unix://$socket_path"
    exec_root=$(mktemp -d /tmp/conveyor-dockerd.XXXXXX)
    # The data root stays between runs: it caches images and build layers.
    mkdir -p "$work/docker"
    dockerd --host "$DOCKER_HOST" --bridge=none --iptables=false \
        --data-root "$work/docker" --exec-root "$exec_root" \
        --pidfile "$exec_root/dockerd.pid" >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 1 120); do
        engine_responds && break
        if ! kill -0 "$dockerd_pid" 2>/dev/null; then
            echo "container-test: dockerd exited during start; the end of $work/dockerd.log:" >&2
            tail -n 40 "$work/dockerd.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    engine_responds || { echo "container-test: dockerd did not respond within 60 s; see $work/dockerd.log" >&2; exit 1; }
    echo "container-test: started dockerd (PID $dockerd_pid) on $DOCKER_HOST"
fi
step "Docker engine ready"

# --- 3. Debian base images -------------------------------------------------------

# Prints the URI of the first enabled apt source of SUITE with component main,
# from sources.list, *.list and deb822 *.sources files.
apt_source_uri() {
    "$python" - "$1" <<'PYTHON'
import glob
import sys

suite = sys.argv[1]


def one_line_entries():
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            lines = open(path, encoding="utf-8").read().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                while words and not words[0].endswith("]"):
                    words.pop(0)
                words = words[1:]
            if len(words) >= 3:
                yield words[0], [words[1]], words[2:]


def deb822_entries():
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        text = open(path, encoding="utf-8").read()
        for paragraph in text.split("\n\n"):
            fields = {}
            for line in paragraph.splitlines():
                if line.startswith("#") or line[:1].isspace() or ":" not in line:
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
            if "deb" not in fields.get("types", []):
                continue
            if fields.get("enabled", ["yes"])[0].lower() == "no":
                continue
            for uri in fields.get("uris", []):
                yield uri, fields.get("suites", []), fields.get("components", [])


for uri, suites, components in [*one_line_entries(), *deb822_entries()]:
    if suite in suites and "main" in components:
        print(uri)
        break
PYTHON
}

# Writes the apt sources of the base images: this machine's mirrors for
# bookworm, bookworm-updates and bookworm-security, and the apt settings
# that reaching them needs (Acquire:: options such as a proxy).
configure_base_apt() {
    local rootfs="$1" mirror="$2" security
    security=$(apt_source_uri bookworm-security)
    rm -f "$rootfs/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\n' "$mirror"
        printf 'Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        if [ -n "$security" ]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\n' "$security"
            printf 'Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        fi
    } >"$rootfs/etc/apt/sources.list.d/debian.sources"
    local file
    for file in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
        if [ -f "$file" ] && grep -q '^[[:space:]]*Acquire' "$file"; then
            cp "$file" "$rootfs/etc/apt/apt.conf.d/host-$(basename "$file")"
        fi
    done
}

# Trims the tree the way Debian's slim images are trimmed: no manuals, info
# pages, translations or documentation other than copyright files, now or
# in packages installed later.
make_slim() {
    local rootfs="$1"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim-image" <<'DPKG'
# This image leaves out documentation, manuals and translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
DPKG
    find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{man,info,groff,lintian,locale}/*
}

remove_rootfs() {
    local rootfs="$1" mount_point
    [ -e "$rootfs" ] || return 0
    # An interrupted debootstrap can leave /proc or /sys mounted inside.
    while read -r mount_point; do
        [ -n "$mount_point" ] && umount --lazy "$mount_point" || true
    done < <(mounts_under "$rootfs")
    if [ -n "$(mounts_under "$rootfs")" ]; then
        echo "container-test: $rootfs still has mounts; remove them by hand" >&2
        exit 1
    fi
    rm -rf "$rootfs"
}

build_base_tarballs() {
    local base="$work/base" mirror include=()
    mirror=${CONVEYOR_DEBIAN_MIRROR:-$(apt_source_uri bookworm)}
    if [ -z "$mirror" ]; then
        echo "container-test: no apt source for bookworm main; set CONVEYOR_DEBIAN_MIRROR" >&2
        exit 1
    fi
    if [[ "$mirror" == https:* ]]; then
        include=(--include=ca-certificates)
    fi
    require_root "debootstrap"
    "$repository/scripts/apt-install-missing.sh" container-test debootstrap debian-archive-keyring
    mkdir -p "$base"
    remove_rootfs "$base/rootfs"
    echo "container-test: debootstrap bookworm from $mirror (log: $base/debootstrap.log)"
    run_logged "$base/debootstrap.log" debootstrap --variant=minbase "${include[@]}" \
        --keyring=/usr/share/keyrings/debian-archive-keyring.gpg bookworm "$base/rootfs" "$mirror"
    configure_base_apt "$base/rootfs" "$mirror"
    # The package lists and archives are fetched again by any apt-get update,
    # and Docker mounts its own resolv.conf into every container.
    rm -rf "$base/rootfs"/var/lib/apt/lists/* "$base/rootfs"/var/cache/apt/archives/*.deb
    rm -f "$base/rootfs/etc/resolv.conf"
    tar --numeric-owner -C "$base/rootfs" -cf "$base/bookworm.tar.partial" .
    mv "$base/bookworm.tar.partial" "$base/bookworm.tar"
    make_slim "$base/rootfs"
    tar --numeric-owner -C "$base/rootfs" -cf "$base/bookworm-slim.tar.partial" .
    mv "$base/bookworm-slim.tar.partial" "$base/bookworm-slim.tar"
    remove_rootfs "$base/rootfs"
}

if "$docker_client" image inspect debian:bookworm debian:bookworm-slim >/dev/null 2>&1; then
    echo "container-test: debian:bookworm and debian:bookworm-slim are present"
elif [ "${CONVEYOR_CONTAINER_PULL:-0}" = 1 ]; then
    "$docker_client" pull debian:bookworm
    "$docker_client" pull debian:bookworm-slim
else
    if [ ! -f "$work/base/bookworm.tar" ] || [ ! -f "$work/base/bookworm-slim.tar" ]; then
        build_base_tarballs
    fi
    for variant in bookworm bookworm-slim; do
        "$docker_client" import --change 'CMD ["bash"]' "$work/base/$variant.tar" "debian:$variant" >/dev/null
    done
    echo "container-test: imported debian:bookworm and debian:bookworm-slim from $work/base"
fi
step "base images ready"

# --- 4. images -------------------------------------------------------------------
# The classic builder: Debian's engine and client build without BuildKit's
# buildx plug-in, and it honours --network host for every RUN step.
export DOCKER_BUILDKIT=0
echo "container-test: building $image (log: $work/build-image.log)"
run_logged "$work/build-image.log" "$docker_client" build --network host \
    --build-arg "JOBS=$jobs" --tag "$image" "$repository"
step "built $image"
run_logged "$work/build-postgres.log" "$docker_client" build --network host \
    --tag "$postgres_image" --file "$repository/tests/container/postgres.Dockerfile" \
    "$repository/tests/container"
step "built $postgres_image"

# --- 5. tests ---------------------------------------------------------------------
results="$work/results.json"
rm -f "$results"
test_status=0
CONVEYOR_DOCKER="$docker_client" CONVEYOR_IMAGE="$image" \
    CONVEYOR_POSTGRES_IMAGE="$postgres_image" CONVEYOR_CONTAINER_RUN_ID="$run_id" \
    CONVEYOR_CONTAINER_RESULTS="$results" PYTHONDONTWRITEBYTECODE=1 \
    "$python" -m pytest -v -p no:cacheprovider "$repository/tests/container/test_image.py" \
    || test_status=$?
step "tests finished"

if [ -f "$results" ]; then
    "$python" - "$results" <<'PYTHON'
import json
import sys

results = json.load(open(sys.argv[1], encoding="utf-8"))
print(f"container-test: image {results['image']}: {results['image_bytes'] / 1e6:.1f} MB")
startups = results.get("startup_seconds", [])
if startups:
    each = ", ".join(f"{seconds:.2f}" for seconds in startups)
    print(f"container-test: start-up, docker run to /healthz 200: median "
          f"{sorted(startups)[len(startups) // 2]:.2f} s (runs: {each})")
PYTHON
fi
echo "container-test: wall time $SECONDS s"
exit "$test_status"
