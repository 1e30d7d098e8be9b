# The Conveyor container image: one `conveyor` binary on Debian 12 (bookworm).
#
#   docker build --network host -t conveyor .
#   docker run --network host conveyor serve        # API and workers, SQLite in /var/lib/conveyor
#   docker run --network host conveyor worker       # workers alone, with CONVEYOR_DATABASE set
#
# Settings come from CONVEYOR_* environment variables (every flag has one).
# docs/deployment.md describes the image, its defaults and `make container-test`.

# --- build stage --------------------------------------------------------------
FROM debian:bookworm AS build

# The build packages of scripts/install-deps.sh, without the test, benchmark
# and fuzzing tools.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake ninja-build pkg-config \
        libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev \
        libsqlite3-dev libpq-dev libicu-dev libstemmer-dev \
        libspdlog-dev libfmt-dev libcli11-dev nettle-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake cmake
COPY data data
COPY bench/CMakeLists.txt bench/store_bench.cpp bench/
COPY src src

# Compile jobs; the default suits a 2-core machine.
ARG JOBS=2
RUN cmake --preset release -DCONVEYOR_BUILD_TESTS=OFF \
    && cmake --build --preset release -j "${JOBS}" --target conveyor \
    && strip --strip-unneeded build/release/conveyor

# The run stage installs exactly the packages that own the shared libraries
# the binary loads, as ldd and dpkg report them here.
COPY scripts/runtime-packages.sh /usr/local/bin/runtime-packages.sh
RUN runtime-packages.sh build/release/conveyor > /runtime-packages.txt \
    && cat /runtime-packages.txt

# --- run stage ----------------------------------------------------------------
FROM debian:bookworm-slim

# apt-get clean deletes the downloaded .deb files: Debian's official images
# do that through an apt hook, but a base built with plain debootstrap keeps
# them.
COPY --from=build /runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive xargs --arg-file=/tmp/runtime-packages.txt \
        apt-get install -y --no-install-recommends \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt

# A fixed, unprivileged UID and GID, so that volume ownership and Kubernetes'
# runAsNonRoot check do not depend on the order in which users were created.
RUN groupadd --system --gid 10001 conveyor \
    && useradd --system --uid 10001 --gid conveyor --home-dir /var/lib/conveyor \
        --no-create-home --shell /usr/sbin/nologin conveyor \
    && install -d -o conveyor -g conveyor -m 0750 /var/lib/conveyor

COPY --from=build /src/build/release/conveyor /usr/local/bin/conveyor
COPY scripts/container-healthcheck.sh /usr/local/bin/conveyor-healthcheck
COPY scripts/container-entrypoint.sh /usr/local/bin/conveyor-entrypoint

# serve and api listen on CONVEYOR_LISTEN; a worker serves /healthz and
# /metrics on CONVEYOR_METRICS_LISTEN. The grace period fits inside the 10 s
# that `docker stop` waits before it sends SIGKILL.
ENV CONVEYOR_LISTEN=0.0.0.0:8080 \
    CONVEYOR_METRICS_LISTEN=0.0.0.0:9090 \
    CONVEYOR_DATABASE=sqlite:/var/lib/conveyor/conveyor.db \
    CONVEYOR_LOG_FORMAT=json \
    CONVEYOR_SHUTDOWN_GRACE=8s

WORKDIR /var/lib/conveyor
VOLUME ["/var/lib/conveyor"]
USER 10001:10001
EXPOSE 8080 9090

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/conveyor-healthcheck"]

# conveyor runs as PID 1 (the entrypoint script execs it, sending a
# server's log to standard output) and handles SIGTERM itself; it starts no
# child processes, so it needs no init to reap them.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/conveyor-entrypoint"]
CMD ["serve"]
