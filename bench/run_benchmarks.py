#!/usr/bin/python3
"""Run Conveyor's benchmark suite and regenerate docs/BENCHMARKS.md.

Scenarios (each on SQLite and PostgreSQL unless noted):
  analysis        analysis_bench throughput on English and mixed-script text
  idle-rss        resident memory of an idle `conveyor serve` (SQLite only)
  commit-ceiling  store_bench commit-ceiling, 1 and 100 rows per transaction
  healthz         GET /healthz at 64 connections: the HTTP ceiling
  submit          POST /v1/tasks against `conveyor api` (no worker) and the
                  FastAPI + Celery reference service, at each --connections
  get             GET /v1/tasks/{id}: the maximum rate, then half of it paced
  list            the first list page and one --list-depth rows deep
  e2e             --e2e-tasks tasks through `conveyor serve --simulated-delay 0`,
                  and --reference-e2e-tasks through the reference
  waiting         --waiting-tasks queued tasks drained by one `conveyor worker`
  cost-growth     store_bench cost-growth at each of --cost-sizes tasks

Raw results go to bench/results/latest.json (rewritten after each scenario);
then the report and its plots are rendered from that file. --report-only
renders them again without measuring. Everything listens on 127.0.0.1 only.
Run with /usr/bin/python3; it needs wrk, gnuplot, PostgreSQL 15, the release
build (build/release) and, for the reference, the packages that
scripts/install-bench-deps.sh installs.
"""

import argparse
import os
import pathlib
import shutil
import signal
import sys
import time

BENCH_DIR = pathlib.Path(__file__).resolve().parent
REPOSITORY = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from driver import machine, report, results, scenarios, services  # noqa: E402

DEFAULT_BUILD_DIR = REPOSITORY / "build" / "release"
DEFAULT_RESULTS = BENCH_DIR / "results" / "latest.json"
DEFAULT_DOCUMENT = REPOSITORY / "docs" / "BENCHMARKS.md"
DEFAULT_PLOTS = REPOSITORY / "docs" / "benchmarks"
TEN_MILLION = 10_000_000


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived; the driver stops its children and exits."""


def comma_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def positive_ints(text):
    values = [int(item) for item in comma_list(text)]
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas: {text}")
    return values


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Scenarios: " + ", ".join(scenarios.SCENARIOS))
    where = parser.add_argument_group("programs and files")
    where.add_argument("--build-dir", type=pathlib.Path, default=DEFAULT_BUILD_DIR,
                       help="CMake build folder with conveyor and bench/ (default build/release)")
    where.add_argument("--binary", type=pathlib.Path,
                       help="the conveyor executable (default BUILD_DIR/conveyor)")
    where.add_argument("--store-bench", type=pathlib.Path,
                       help="the store_bench executable (default BUILD_DIR/bench/store_bench)")
    where.add_argument("--analysis-bench", type=pathlib.Path,
                       help="the analysis_bench executable (default BUILD_DIR/bench/analysis_bench)")
    where.add_argument("--results", type=pathlib.Path, default=DEFAULT_RESULTS,
                       help="raw results JSON to write, or to read with --report-only "
                            "(default bench/results/latest.json)")
    where.add_argument("--document", type=pathlib.Path, default=DEFAULT_DOCUMENT,
                       help="Markdown report to regenerate (default docs/BENCHMARKS.md)")
    where.add_argument("--plots-dir", type=pathlib.Path, default=DEFAULT_PLOTS,
                       help="folder for the PNG plots (default docs/benchmarks)")
    where.add_argument("--work-dir", type=pathlib.Path,
                       help="parent folder of the temporary databases (default: the system "
                            "temporary folder); SQLite and PostgreSQL both write there")
    where.add_argument("--keep-data", action="store_true",
                       help="keep the temporary folder with databases and logs")
    where.add_argument("--report-only", action="store_true",
                       help="measure nothing; render the report from --results again")
    where.add_argument("--no-report", action="store_true",
                       help="write the results JSON but leave the report and plots alone")

    what = parser.add_argument_group("what to run")
    what.add_argument("--only", type=comma_list, default=None,
                      help="comma-separated scenarios to run (default: all)")
    what.add_argument("--skip", type=comma_list, default=[],
                      help="comma-separated scenarios to leave out")
    what.add_argument("--backends", type=comma_list, default=["sqlite", "postgresql"],
                      help="databases for Conveyor: sqlite, postgresql (default both)")
    what.add_argument("--no-reference", dest="reference", action="store_false",
                      help="leave out the FastAPI + Celery reference service")

    sizes = parser.add_argument_group("sizes and durations")
    sizes.add_argument("--runs", type=int, default=3,
                       help="repetitions of each figure (default 3)")
    sizes.add_argument("--duration", type=int, default=10,
                       help="seconds of each wrk measurement (default 10)")
    sizes.add_argument("--warmup", type=int, default=3,
                       help="seconds of submit load sent to each server before measuring "
                            "(default 3; 0 for none)")
    sizes.add_argument("--connections", type=positive_ints, default=[16, 64, 256],
                       help="connection counts of the submit scenario (default 16,64,256)")
    sizes.add_argument("--wrk-threads", type=int, default=max(1, (os.cpu_count() or 1) // 4),
                       help="wrk threads (default a quarter of the CPUs, at least 1)")
    sizes.add_argument("--paced-connections", type=int, default=8,
                       help="connections of the paced half-rate GET run (default 8)")
    sizes.add_argument("--get-tasks", type=int, default=20_000,
                       help="task ids the GET scenario picks from (default 20000)")
    sizes.add_argument("--list-depth", type=int, default=10_000,
                       help="rows before the deep list page (default 10000)")
    sizes.add_argument("--e2e-tasks", type=int, default=50_000,
                       help="tasks of the end-to-end run of Conveyor (default 50000)")
    sizes.add_argument("--reference-e2e-tasks", type=int, default=5_000,
                       help="tasks of the end-to-end run of the reference (default 5000)")
    sizes.add_argument("--waiting-tasks", type=int, default=100_000,
                       help="tasks queued before the worker starts (default 100000)")
    sizes.add_argument("--waiting-delay", default="5s",
                       help="--simulated-delay of the waiting-capacity worker (default 5s)")
    sizes.add_argument("--commit-seconds", type=int, default=5,
                       help="seconds of each commit-ceiling measurement (default 5)")
    sizes.add_argument("--cost-sizes", type=positive_ints, default=[10_000, TEN_MILLION],
                       help="table sizes of the cost-growth scenario (default 10000,10000000)")
    sizes.add_argument("--skip-10m", action="store_true",
                       help="leave sizes of 10 million tasks and more out of cost-growth")
    sizes.add_argument("--cost-samples", type=int, default=1000,
                       help="timed calls per operation in cost-growth (default 1000)")
    sizes.add_argument("--submit-timeout", type=int, default=900,
                       help="seconds allowed for one capped submission (default 900)")
    sizes.add_argument("--drain-timeout", type=int, default=900,
                       help="seconds allowed for queued tasks to finish (default 900)")

    options = parser.parse_args(argv)
    options.binary = options.binary or options.build_dir / "conveyor"
    options.store_bench = options.store_bench or options.build_dir / "bench" / "store_bench"
    options.analysis_bench = (options.analysis_bench
                              or options.build_dir / "bench" / "analysis_bench")
    unknown = set(options.only or []) | set(options.skip)
    unknown -= set(scenarios.SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(scenarios.SCENARIOS)}")
    chosen = options.only or list(scenarios.SCENARIOS)
    options.scenarios = [name for name in chosen if name not in options.skip]
    for backend in options.backends:
        if backend not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {backend}; choose sqlite or postgresql")
    if options.skip_10m:
        options.cost_sizes = [size for size in options.cost_sizes if size < TEN_MILLION]
    if options.runs < 1 or options.duration < 1:
        parser.error("--runs and --duration must be at least 1")
    return options


def check_tools(options):
    """Return (problems that stop the run, warnings about scenarios that will fail).

    Without wrk or the conveyor binary nearly every scenario fails, so the
    run does not start. A missing store_bench or analysis_bench only fails
    its own scenarios, which are then recorded as failures.
    """
    problems = []
    warnings = []
    if shutil.which("wrk") is None and any(
            name in options.scenarios for name in ("healthz", "submit", "get", "list", "e2e",
                                                   "waiting")):
        problems.append("wrk is not installed; scripts/install-bench-deps.sh installs it")
    if shutil.which("gnuplot") is None and not options.no_report:
        warnings.append("gnuplot is not installed, so the report will have no plots; "
                        "scripts/install-bench-deps.sh installs it")
    programs = {"binary": True,
                "store_bench": any(name in options.scenarios
                                   for name in ("commit-ceiling", "cost-growth")),
                "analysis_bench": "analysis" in options.scenarios}
    paths = {"binary": options.binary, "store_bench": options.store_bench,
             "analysis_bench": options.analysis_bench}
    for name, needed in programs.items():
        if needed and not os.access(paths[name], os.X_OK):
            message = f"{paths[name]} is missing or not executable; build it first"
            (problems if name == "binary" else warnings).append(message)
    return problems, warnings


def options_summary(options):
    summary = {}
    for name, value in vars(options).items():
        summary[name] = str(value) if isinstance(value, pathlib.Path) else value
    return summary


def raise_interrupted(signal_number, frame):
    raise Interrupted(f"signal {signal_number}")


def measure(options):
    """Run the selected scenarios; return the process exit status.

    The results file is written however the run ends. An unexpected error
    propagates after the children are stopped, and leaves the results marked
    incomplete.
    """
    workspace = services.Workspace(options.work_dir, options.keep_data)
    print(f"temporary folder: {workspace.root}", flush=True)
    run_results = None
    complete = False
    interrupted = False
    try:
        facts = machine.describe(options.binary, options.build_dir, workspace.root)
        run_results = results.Results(options.results, options_summary(options), facts)
        scenarios.Bench(options, workspace, run_results).run_all()
        complete = True
    except (Interrupted, KeyboardInterrupt) as error:
        interrupted = True
        print(f"interrupted ({str(error) or 'Ctrl-C'}); stopping the child processes", flush=True)
    finally:
        # A second signal must not cut the cleanup short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        workspace.close()
        if run_results is not None:
            run_results.finish(complete)
        signal.signal(signal.SIGTERM, raise_interrupted)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if run_results is None:
        return 130
    failures = run_results.data["failures"]
    print(f"results: {options.results} ({len(run_results.data['records'])} records, "
          f"{len(failures)} failures, {run_results.data['wall_seconds']} s)", flush=True)
    if interrupted:
        return 130
    return 1 if failures else 0


def main(argv=None):
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, raise_interrupted)
    status = 0
    if not options.report_only:
        problems, warnings = check_tools(options)
        for warning in warnings:
            print(f"run_benchmarks: warning: {warning}", file=sys.stderr)
        if problems:
            for problem in problems:
                print(f"run_benchmarks: {problem}", file=sys.stderr)
            return 2
        started = time.monotonic()
        status = measure(options)
        print(f"measured in {time.monotonic() - started:.0f} s", flush=True)
        if status == 130:
            return status
    if not options.no_report:
        if not options.results.exists():
            print(f"run_benchmarks: {options.results} not found; run without --report-only "
                  "to measure first", file=sys.stderr)
            return 2
        data = results.load(options.results)
        report.render(data, options.document, options.plots_dir)
        print(f"report: {options.document}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
