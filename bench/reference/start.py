#!/usr/bin/python3
"""Start the reference service: Redis, a Celery worker and uvicorn, stopped together.

Usage:
    start.py --database URL --port PORT [--simulated-delay-ms N] [--workers N]
             [--celery-concurrency N] [--prefetch-multiplier N] [--max-runtime-s S]

The launcher creates the table reference_tasks when it is missing, starts
redis-server on a free loopback port in a temporary directory, a Celery
prefork worker and uvicorn, waits until GET /healthz returns 200 and the Celery
worker has reported ready, then prints the line `ready` on stdout. On SIGTERM
or SIGINT, when its parent process exits, or after --max-runtime-s, it stops
uvicorn, Celery and Redis in that order and exits 0. When a child exits on
its own or a start step fails, it stops the rest and exits 1. The children's
output goes to this process's stderr, so stdout carries only `ready`.

The Debian packages it needs are installed by scripts/install-bench-deps.sh.
"""

import argparse
import ctypes
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# The Debian packages (FastAPI, Celery, psycopg2, redis-py) are installed for
# the system interpreter only, not for any other python3 on PATH.
SYSTEM_PYTHON = "/usr/bin/python3"
if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON):
    os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__), *sys.argv[1:]])

import psycopg2  # noqa: E402  (imported after the interpreter check on purpose)
import redis  # noqa: E402

import reference_common  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
REDIS_SERVER = "redis-server"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# Celery's warm shutdown (SIGTERM) waits for running tasks, which may sleep
# for a long simulated delay. Its cold shutdown (SIGQUIT) abandons them, and
# Redis delivers such an unacknowledged message again on the next start.
CELERY_WARM_STOP_S = 10.0
POLL_INTERVAL_S = 0.1
DEFAULT_MAX_RUNTIME_S = 6 * 3600.0
PR_SET_PDEATHSIG = 1

stop_requested = False


class StartError(RuntimeError):
    """A child that did not start, with the reason in the message."""


class StopRequested(Exception):
    """SIGTERM or SIGINT arrived while the service was starting."""


def parse_arguments():
    parser = argparse.ArgumentParser(
        description="Start the FastAPI, Celery and Redis reference service on 127.0.0.1.")
    parser.add_argument("--database", required=True,
                        help="libpq URL of the PostgreSQL database for the table reference_tasks")
    parser.add_argument("--port", type=int, required=True,
                        help="TCP port on 127.0.0.1 for the HTTP API")
    parser.add_argument("--simulated-delay-ms", type=int, default=0,
                        help="milliseconds each task sleeps before the analysis (default 0)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="uvicorn worker processes (default: the number of CPUs)")
    parser.add_argument("--celery-concurrency", type=int, default=os.cpu_count(),
                        help="Celery prefork pool processes (default: the number of CPUs)")
    parser.add_argument("--prefetch-multiplier", type=int, default=1,
                        help="messages each Celery pool process may reserve (default 1)")
    parser.add_argument("--max-runtime-s", type=float, default=DEFAULT_MAX_RUNTIME_S,
                        help="seconds after which the service stops by itself (default 6 hours)")
    arguments = parser.parse_args()
    if arguments.simulated_delay_ms < 0:
        parser.error("--simulated-delay-ms must be 0 or more")
    if min(arguments.workers, arguments.celery_concurrency, arguments.prefetch_multiplier) < 1:
        parser.error("--workers, --celery-concurrency and --prefetch-multiplier must be at least 1")
    return arguments


def die_with_parent(signal_number):
    """Ask the kernel to send signal_number to the calling process when its parent exits.

    Called in a child between fork and exec. The signal follows the thread
    that forked, which is this launcher's only thread.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn(name, command, environment, stop_signals=((signal.SIGTERM, STOP_TIMEOUT_S),)):
    """Start command in a session of its own, sending its output to stderr.

    stop_signals lists the (signal, seconds to wait) steps that stop() takes
    before it sends SIGKILL.
    """
    # A session of its own keeps a terminal's Ctrl-C away from the children,
    # so that stop() can end them in order. The parent-death signal ends them
    # if the launcher is killed outright.
    process = subprocess.Popen(
        command, cwd=HERE, env=environment, stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno(), stderr=sys.stderr.fileno(), start_new_session=True,
        preexec_fn=lambda: die_with_parent(signal.SIGTERM),
    )
    process.name = name
    process.stop_signals = stop_signals
    return process


def start_redis(directory, port):
    # Persistence: the append-only file with fsync once a second, Redis's
    # default fsync policy for it. A crash of Redis loses about the last
    # second of published messages, whose tasks then stay PENDING in
    # PostgreSQL. No RDB snapshots, which would only fork the server.
    command = [
        REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
        "--dir", str(directory), "--save", "", "--appendonly", "yes",
        "--appendfsync", "everysec", "--daemonize", "no", "--loglevel", "warning",
        "--logfile", "", "--databases", "1",
    ]
    return spawn("redis-server", command, dict(os.environ))


def wait_for_redis(process, port, deadline):
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0,
                         socket_connect_timeout=1.0)
    while time.monotonic() < deadline:
        check_running([process])
        try:
            if client.ping():
                client.close()
                return
        except redis.RedisError:
            pass
        time.sleep(POLL_INTERVAL_S)
    raise StartError(f"redis-server did not respond to PING on port {port} "
                     f"within {START_TIMEOUT_S:.0f} s")


def create_table(database_url):
    connection = reference_common.connect(database_url, "conveyor-reference-start")
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(reference_common.SCHEMA_SQL)
    finally:
        connection.close()


def child_environment(arguments, broker_url, ready_file):
    environment = dict(os.environ)
    environment[reference_common.DATABASE_URL_VARIABLE] = arguments.database
    environment[reference_common.BROKER_URL_VARIABLE] = broker_url
    environment[reference_common.SIMULATED_DELAY_VARIABLE] = str(arguments.simulated_delay_ms)
    environment[reference_common.WORKER_READY_FILE_VARIABLE] = str(ready_file)
    environment[reference_common.PREFETCH_MULTIPLIER_VARIABLE] = str(arguments.prefetch_multiplier)
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


def start_celery(arguments, environment):
    # Gossip, mingle and heartbeats exchange state between several workers;
    # with one worker they only add broker traffic.
    command = [
        SYSTEM_PYTHON, "-m", "celery", "--app", "reference_worker", "worker",
        "--pool", "prefork", "--concurrency", str(arguments.celery_concurrency),
        "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--hostname", f"reference-{os.getpid()}@%h",
    ]
    stop_signals = ((signal.SIGTERM, CELERY_WARM_STOP_S), (signal.SIGQUIT, STOP_TIMEOUT_S))
    return spawn("celery", command, environment, stop_signals)


def start_uvicorn(arguments, environment):
    command = [
        SYSTEM_PYTHON, "-m", "uvicorn", "reference_api:app", "--app-dir", str(HERE),
        "--host", "127.0.0.1", "--port", str(arguments.port),
        "--workers", str(arguments.workers), "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log",
    ]
    return spawn("uvicorn", command, environment)


def check_running(processes):
    """Raise StopRequested after a stop signal, or StartError when a child has exited."""
    if stop_requested:
        raise StopRequested()
    for process in processes:
        if process.poll() is not None:
            raise StartError(f"{process.name} exited with status {process.returncode}")


def health_answers(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1.0) as reply:
            return reply.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_until_serving(processes, port, ready_file, deadline):
    while time.monotonic() < deadline:
        check_running(processes)
        if ready_file.exists() and health_answers(port):
            return
        time.sleep(POLL_INTERVAL_S)
    raise StartError(f"the service did not become ready within {START_TIMEOUT_S:.0f} s "
                     f"(Celery ready: {ready_file.exists()}, GET /healthz answered: "
                     f"{health_answers(port)})")


def read_stat(pid):
    """Return (parent PID, start time in clock ticks) of pid from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read().decode("ascii", errors="replace")
    except OSError:
        return None
    # The command name in brackets may contain spaces, so split after it.
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[1]), int(fields[19])


def descendants(pid):
    """Return (PID, start time) of every live descendant of pid.

    The start time distinguishes a descendant from an unrelated process that
    reuses its PID later.
    """
    children_of = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = read_stat(entry)
        if stat is not None:
            children_of.setdefault(stat[0], []).append((int(entry), stat[1]))
    found = []
    pending = [pid]
    while pending:
        for child in children_of.get(pending.pop(), []):
            found.append(child)
            pending.append(child[0])
    return found


def kill_leftovers(family):
    """SIGKILL each (PID, start time) of family that still runs."""
    for pid, start_time in family:
        stat = read_stat(pid)
        if stat is None or stat[1] != start_time:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(process):
    """Send process its stop signals in turn, then SIGKILL it and the descendants it had."""
    if process.poll() is not None:
        return
    family = descendants(process.pid)
    for signal_number, grace_s in process.stop_signals:
        process.send_signal(signal_number)
        try:
            process.wait(timeout=grace_s)
            break
        except subprocess.TimeoutExpired:
            print(f"start.py: {process.name} did not stop within {grace_s:.0f} s of "
                  f"{signal.Signals(signal_number).name}", file=sys.stderr, flush=True)
    if process.poll() is None:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)

    # uvicorn's and Celery's own children normally exit with their parent;
    # any that did not are killed here.
    kill_leftovers(family)


def request_stop(signal_number, frame):
    global stop_requested
    stop_requested = True


def serve(processes, max_runtime_s):
    """Wait for a stop signal, a child's exit, the parent's exit or the end of max_runtime_s.

    Returns the exit status: 1 when a child exited on its own, else 0.
    """
    deadline = time.monotonic() + max_runtime_s
    parent = os.getppid()
    while not stop_requested:
        if os.getppid() != parent:
            print("start.py: the parent process exited; stopping the service",
                  file=sys.stderr, flush=True)
            return 0
        for process in processes:
            if process.poll() is not None:
                print(f"start.py: {process.name} exited with status {process.returncode}; "
                      "stopping the service", file=sys.stderr, flush=True)
                return 1
        if time.monotonic() >= deadline:
            print(f"start.py: stopping after --max-runtime-s {max_runtime_s:.0f}",
                  file=sys.stderr, flush=True)
            return 0
        time.sleep(POLL_INTERVAL_S)
    return 0


def main():
    arguments = parse_arguments()
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    directory = pathlib.Path(tempfile.mkdtemp(prefix="conveyor-reference-"))
    ready_file = directory / "celery-ready"
    processes = []
    status = 1
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        redis_port = free_port()
        processes.append(start_redis(directory, redis_port))
        wait_for_redis(processes[0], redis_port, deadline)
        create_table(arguments.database)

        environment = child_environment(
            arguments, f"redis://127.0.0.1:{redis_port}/0", ready_file)
        processes.append(start_celery(arguments, environment))
        processes.append(start_uvicorn(arguments, environment))
        wait_until_serving(processes, arguments.port, ready_file, deadline)

        print("ready", flush=True)
        status = serve(processes, arguments.max_runtime_s)
    except StopRequested:
        status = 0
    except (StartError, psycopg2.Error, redis.RedisError, OSError) as error:
        print(f"start.py: the reference service failed to start: {error}",
              file=sys.stderr, flush=True)
    finally:
        # Stop the HTTP side first so no task is accepted after the worker
        # and the broker are gone.
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(directory, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
