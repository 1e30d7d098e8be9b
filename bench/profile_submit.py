"""Profile `POST /v1/tasks` of `conveyor api` on SQLite with perf.

Starts `conveyor api` on a new SQLite file in a temporary directory and
drives it with wrk and bench/wrk/submit.lua at 64 connections. In the middle
of the run, `perf record` samples the server process for a few seconds. The
script then prints where the server's CPU time goes: the share of each
library and of the kernel, then the hottest symbols with the time of their
callees included (`--children`). It does the same for `GET /healthz`, so
the two can be compared. Needs the release build, wrk and perf (Debian:
linux-perf).

Usage: /usr/bin/python3 bench/profile_submit.py [--seconds 6] [--top 25]
"""

import argparse
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
BINARY = REPOSITORY / "build" / "release" / "conveyor"
SUBMIT_SCRIPT = REPOSITORY / "bench" / "wrk" / "submit.lua"
START_TIMEOUT_S = 10


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(port):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"conveyor api did not listen on port {port} within {START_TIMEOUT_S} s")


def perf_report(data, sort, children, top):
    command = ["perf", "report", "-i", str(data), "--stdio", "-g", "none", "--sort", sort,
               "--children" if children else "--no-children"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rows = [line.rstrip() for line in output.splitlines()
            if line.strip() and not line.startswith("#")]
    return rows[:top]


def profile(name, wrk_arguments, seconds, top, work_dir):
    port = free_port()
    database = work_dir / f"{name}.db"
    server = subprocess.Popen(
        [str(BINARY), "api", "--listen", f"127.0.0.1:{port}", "--database", f"sqlite:{database}",
         "--log-level", "warn"], stderr=subprocess.DEVNULL)
    data = work_dir / f"{name}.perf"
    try:
        wait_until_listening(port)
        duration = seconds + 4
        load = subprocess.Popen(
            ["wrk", "-t2", "-c64", f"-d{duration}s", *wrk_arguments,
             f"http://127.0.0.1:{port}{'/healthz' if name == 'healthz' else '/'}"],
            stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        subprocess.run(["perf", "record", "-F", "999", "-g", "-o", str(data), "-p",
                        str(server.pid), "--", "sleep", str(seconds)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rate = [line for line in load.communicate(timeout=duration + 30)[0].splitlines()
                if "Requests/sec" in line]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(f"== {name}: {rate[0].strip() if rate else 'no wrk rate'}")
    print("-- share of samples by object")
    for row in perf_report(data, "dso", False, 10):
        print(row)
    print(f"-- top {top} symbols, callers folded in (children, self)")
    for row in perf_report(data, "symbol", True, top):
        print(row[:160])
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6, help="perf record time per endpoint")
    parser.add_argument("--top", type=int, default=25, help="symbols to print per endpoint")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-profile-") as directory:
        work_dir = pathlib.Path(directory)
        profile("submit", ["-s", str(SUBMIT_SCRIPT)], arguments.seconds, arguments.top, work_dir)
        profile("healthz", [], arguments.seconds, arguments.top, work_dir)


if __name__ == "__main__":
    main()
