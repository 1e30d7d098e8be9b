"""Profile the latency tail of `GET /v1/tasks/{id}` at half the maximum rate.

Starts `conveyor api` on a durable PostgreSQL cluster (or a SQLite file),
fills it with tasks and measures the maximum GET rate as `make bench` does
(wrk, bench/wrk/get_by_id.lua, 64 connections). It then paces the same load
at half that rate three times:

1. alone, for the latency figures without a profiler attached;
2. under `perf sched record`, to measure the scheduling delay of every
   wakeup: the time a thread was runnable but waited for a core;
3. under `perf record -a -g`, to show which processes and libraries use
   the CPU.

It prints the latency percentiles, the scheduling-delay percentiles of the
server's threads, the database backends and wrk, and the CPU shares.

With --route submit it profiles submissions instead: wrk sends
bench/wrk/submit.lua at 64 connections for the whole run, as `make bench`
does at its maximum rate, and `perf record -a -g` samples the machine for
a few seconds in the middle, to show which processes and libraries use
the CPU.

Needs the release build, wrk and perf (Debian: linux-perf), and runs as
root or with perf_event_paranoid at -1 or lower.

Usage: /usr/bin/python3 bench/profile_get.py [--backend postgresql|sqlite]
       [--route get|submit] [--tasks 20000] [--seconds 10]
"""

import argparse
import collections
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from driver import services, wrk  # noqa: E402

BINARY = services.REPOSITORY / "build" / "release" / "conveyor"
WRK_SCRIPTS = services.REPOSITORY / "bench" / "wrk"
SUBMIT_SCRIPT = WRK_SCRIPTS / "submit.lua"
GET_SCRIPT = WRK_SCRIPTS / "get_by_id.lua"
MAX_RATE_CONNECTIONS = 64
PACED_CONNECTIONS = 8
ID_PAGE_SIZE = 100
SUBMIT_TIMEOUT_S = 600
PROFILER_START_S = 2
PROFILER_SECONDS = 5


def fill(workspace, server, database, tasks):
    """Submit until the table contains `tasks` tasks, and return their ids."""

    def submitted_all():
        return database.counts().total >= tasks

    load = wrk.Load(SUBMIT_SCRIPT, server.base_url + "/", 64, 1, SUBMIT_TIMEOUT_S,
                    {"BENCH_LIMIT": tasks})
    wrk.run(workspace.registry, load, workspace.logs, workspace.next_label("fill"),
            stop_when=submitted_all)
    ids, _ = services.walk_list(server.client, ID_PAGE_SIZE, tasks,
                                max_pages=tasks // ID_PAGE_SIZE + 2)
    return ids


def run_load(workspace, load, label, profiler=None):
    """Run wrk; when profiler is an argv, run it alongside from PROFILER_START_S on."""
    started = None
    if profiler is not None:
        started = subprocess.Popen(
            ["sh", "-c", f"sleep {PROFILER_START_S} && exec \"$@\"", "profiler", *profiler],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = wrk.run(workspace.registry, load, workspace.logs, workspace.next_label(label))
    finally:
        if started is not None:
            started.wait(timeout=PROFILER_START_S + PROFILER_SECONDS + 60)
    return result["report"]


def describe_latency(name, report):
    latency = report["latency_us"]
    percentiles = ", ".join(f"{key} {latency[key] / 1000:.3f} ms"
                            for key in ("p50", "p90", "p99", "p999"))
    print(f"{name}: {report['rate']:,.0f} requests/s; {percentiles}")


def group_of(task_name, server_pid, pid):
    if pid == server_pid:
        return "conveyor"
    if task_name.startswith("postgres"):
        return "postgres"
    if task_name.startswith("wrk"):
        return "wrk"
    return None


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def scheduling_delays(data, server_pid):
    """Scheduling delays (ms) by process group, from `perf sched timehist`."""
    output = subprocess.run(["perf", "sched", "timehist", "-i", str(data)],
                            capture_output=True, text=True, check=True).stdout
    delays = collections.defaultdict(list)
    for line in output.splitlines():
        fields = line.split()
        # time [cpu] name[tid/pid] wait sch_delay run
        if len(fields) < 6 or not fields[1].startswith("["):
            continue
        name_field = " ".join(fields[2:-3])
        if "[" not in name_field:
            continue
        task_name, ids = name_field.rsplit("[", 1)
        ids = ids.rstrip("]").split("/")
        pid = int(ids[-1]) if ids[-1].isdigit() else -1
        group = group_of(task_name, server_pid, pid)
        if group is None:
            continue
        try:
            delays[group].append(float(fields[-2]))
        except ValueError:
            continue
    return delays


def describe_delays(delays, requests):
    print("scheduling delay per wakeup (runnable until running), ms:")
    print("| process | wakeups per request | p50 | p90 | p99 | max | share over 0.1 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for group in ("conveyor", "postgres", "wrk"):
        values = delays.get(group)
        if not values:
            continue
        over = sum(1 for value in values if value > 0.1) / len(values)
        print(f"| {group} | {len(values) / max(1, requests):.2f} "
              f"| {percentile(values, 0.5):.3f} | {percentile(values, 0.9):.3f} "
              f"| {percentile(values, 0.99):.3f} | {max(values):.3f} | {over:.1%} |")


def perf_report(data, sort, limit):
    output = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "-g", "none",
                             "--no-children", "--sort", sort],
                            capture_output=True, text=True, check=True).stdout
    rows = [line.rstrip() for line in output.splitlines()
            if line.strip() and not line.startswith("#")]
    return rows[:limit]


def print_cpu_shares(data):
    print("-- CPU samples by command")
    for row in perf_report(data, "comm", 8):
        print(row)
    print("-- CPU samples by command and object")
    for row in perf_report(data, "comm,dso", 16):
        print(row)


def profile_submissions(workspace, server, seconds):
    """Profile the machine while wrk submits at 64 connections."""
    cpu_data = workspace.root / "submit-cpu.data"
    load = wrk.Load(SUBMIT_SCRIPT, server.base_url + "/", MAX_RATE_CONNECTIONS, 1, seconds, {})
    report = run_load(workspace, load, "submit-cpu",
                      ["perf", "record", "-a", "-g", "-F", "999", "-o", str(cpu_data),
                       "--", "sleep", str(PROFILER_SECONDS)])
    describe_latency("submissions, 64 connections, perf record -a", report)
    print_cpu_shares(cpu_data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--route", choices=("get", "submit"), default="get")
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks to read at random")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    arguments = parser.parse_args()
    if arguments.seconds < PROFILER_START_S + PROFILER_SECONDS + 1:
        parser.error(f"--seconds must be at least {PROFILER_START_S + PROFILER_SECONDS + 1}")

    workspace = services.Workspace(None, keep=False)
    try:
        database = workspace.database(arguments.backend)
        server = services.start_conveyor(workspace, BINARY, "api", database)
        if arguments.route == "submit":
            profile_submissions(workspace, server, arguments.seconds)
            server.stop()
            return
        ids = fill(workspace, server, database, arguments.tasks)
        ids_path = workspace.root / "ids.txt"
        ids_path.write_text("\n".join(ids) + "\n")
        settings = {"BENCH_IDS_FILE": ids_path}
        url = server.base_url + "/"

        maximum = run_load(workspace, wrk.Load(GET_SCRIPT, url, MAX_RATE_CONNECTIONS, 1,
                                               arguments.seconds, settings), "max")
        describe_latency("maximum rate, 64 connections", maximum)
        half = round(maximum["rate"] / 2)
        paced = wrk.Load(GET_SCRIPT, url, PACED_CONNECTIONS, 1, arguments.seconds,
                         dict(settings, BENCH_RATE=half))

        describe_latency(f"paced at {half}/s, no profiler", run_load(workspace, paced, "paced"))

        sched_data = workspace.root / "sched.data"
        report = run_load(workspace, paced, "paced-sched",
                          ["perf", "sched", "record", "-o", str(sched_data), "--", "sleep",
                           str(PROFILER_SECONDS)])
        describe_latency(f"paced at {half}/s, perf sched record", report)
        describe_delays(scheduling_delays(sched_data, server.pid), half * PROFILER_SECONDS)

        cpu_data = workspace.root / "cpu.data"
        report = run_load(workspace, paced, "paced-cpu",
                          ["perf", "record", "-a", "-g", "-F", "999", "-o", str(cpu_data),
                           "--", "sleep", str(PROFILER_SECONDS)])
        describe_latency(f"paced at {half}/s, perf record -a", report)
        print_cpu_shares(cpu_data)
        server.stop()
    finally:
        workspace.close()


if __name__ == "__main__":
    time_started = time.monotonic()
    main()
    print(f"took {time.monotonic() - time_started:.0f} s")
