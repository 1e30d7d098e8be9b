# Thin wrapper over CMake presets. `make test` is what CI runs.

JOBS ?= $(shell nproc)
RUN_ARGS ?=
BENCH_ARGS ?=

.PHONY: deps build debug asan fuzz run test test-release test-release-all test-asan-unit test-asan test-fuzz bench bench-report clean

deps:
	./scripts/install-deps.sh

build: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

debug: deps
	cmake --preset debug
	cmake --build --preset debug -j $(JOBS)

asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)

# The libFuzzer targets of tests/fuzz, built with clang.
fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)

# Serves on 127.0.0.1:8080 with the embedded SQLite database conveyor.db.
run: build
	./build/release/conveyor serve $(RUN_ARGS)

# On the release build every test but the end-to-end files on PostgreSQL and
# in the split topology; the whole suite under AddressSanitizer and
# UndefinedBehaviorSanitizer; then each fuzz target for 25 s.
# docs/testing.md gives the timings.
test: test-release test-asan test-fuzz

# The release build's tests without the end-to-end files on PostgreSQL and
# in the split topology, which the sanitized run covers.
test-release: build
	ctest --preset release -E '^e2e[.](pg|split)[.]' -j 2

# The whole suite on the release build.
test-release-all: build
	ctest --preset release -j 2

test-asan-unit: asan
	ctest --preset asan -L unit -j 2

test-asan: asan
	ctest --preset asan -j 2

test-fuzz: fuzz
	ctest --preset fuzz -j 2

# Measures every scenario (30 to 40 minutes on 2 cores, about 17 GB of
# temporary disk space) and rewrites bench/results/latest.json,
# docs/BENCHMARKS.md and docs/benchmarks/*.png. BENCH_ARGS passes flags to
# bench/run_benchmarks.py (see its --help), for example --skip-10m.
bench: build
	./scripts/install-bench-deps.sh
	/usr/bin/python3 bench/run_benchmarks.py $(BENCH_ARGS)

# Renders docs/BENCHMARKS.md again from bench/results/latest.json.
bench-report:
	/usr/bin/python3 bench/run_benchmarks.py --report-only

# Checks deploy/compose.yaml and every manifest in deploy/kubernetes offline:
# docker-compose config, and a schema validation with pinned npm packages.
.PHONY: deploy-check
deploy-check: deps
	./scripts/check-deploy.sh

clean:
	rm -rf build

# Builds the container image and tests it in real containers: PostgreSQL,
# api, worker and serve, all on 127.0.0.1 with --network host. It needs
# root to start dockerd and run debootstrap unless a Docker engine and the
# Debian base images are already there. Not part of `make test`;
# docs/deployment.md gives its steps and timings.
.PHONY: container-test
container-test:
	./scripts/container-test.sh
