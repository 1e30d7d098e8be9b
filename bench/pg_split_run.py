"""Measure two api and three worker processes on one PostgreSQL database.

Starts a throwaway PostgreSQL cluster (tests/e2e/pg_cluster.py), runs
`conveyor api` twice and `conveyor worker` three times against it with
--simulated-delay 0, drives both API processes with wrk and
bench/wrk/submit.lua at 16 and then 64 connections each for 8 s, waits for
every task to finish, and prints submissions per second and the end-to-end
span. Needs wrk and the release build.
"""

import pathlib
import re
import signal
import subprocess
import sys
import time

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests" / "e2e"))
import pg_cluster  # noqa: E402

BINARY = str(REPOSITORY / "build" / "release" / "conveyor")
SUBMIT_SCRIPT = str(REPOSITORY / "bench" / "wrk" / "submit.lua")
API_PORTS = (18701, 18702)
DRAIN_TIMEOUT_S = 120


def wrk_rate(output):
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def main():
    cluster = pg_cluster.PostgresCluster()
    cluster.start()
    processes = []
    try:
        database = cluster.create_database()
        url = cluster.url(database)
        subprocess.run([BINARY, "migrate", "--database", url], check=True,
                       stderr=subprocess.DEVNULL)
        common = ["--database", url, "--log-level", "warn", "--simulated-delay", "0"]
        for port in API_PORTS:
            processes.append(subprocess.Popen(
                [BINARY, "api", *common, "--listen", f"127.0.0.1:{port}"],
                stderr=subprocess.DEVNULL))
        for _ in range(3):
            processes.append(subprocess.Popen([BINARY, "worker", *common],
                                              stderr=subprocess.DEVNULL))
        time.sleep(1.5)

        for connections in (16, 64):
            runs = [subprocess.Popen(
                ["wrk", "-t1", f"-c{connections}", "-d8s", "-s", SUBMIT_SCRIPT,
                 f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True)
                for port in API_PORTS]
            total = sum(wrk_rate(run.communicate()[0]) for run in runs)
            print(f"{connections} connections per api process: {total:.0f} submissions/s")

        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            left = cluster.psql("SELECT count(*) FROM tasks WHERE status IN "
                                "('PENDING', 'PROCESSING')", database=database)
            if str(left).strip().split()[-1] == "0":
                break
            time.sleep(0.5)
        span = cluster.psql("SELECT count(*), max(finished_at) - min(created_at) FROM tasks",
                            database=database)
        count, millis = str(span).strip().split()[-1].split("|")
        print(f"{count} tasks from first submission to last finish in {int(millis) / 1000:.1f} s")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            print(f"exit status {process.wait(timeout=60)}")
        cluster.destroy()


if __name__ == "__main__":
    main()
