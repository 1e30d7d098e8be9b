# Thin wrapper over CMake presets. `make test` is what CI runs.

JOBS ?= $(shell nproc)
RUN_ARGS ?=

.PHONY: deps build debug asan run test test-asan bench clean

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

# Serves on 127.0.0.1:8080 with the embedded SQLite database conveyor.db.
run: build
	./build/release/conveyor serve $(RUN_ARGS)

test: build
	ctest --preset release -j 2

test-asan: asan
	ctest --preset asan -j 2

bench: build
	@echo "benchmarks: see bench/"
	./build/release/bench/analysis_bench

clean:
	rm -rf build
