"""Fixtures that start the real conveyor binary and speak HTTP to it.

Every process runs on 127.0.0.1 with port 0. The binary comes from
CONVEYOR_BINARY, or from build/release/conveyor when that variable is unset.

CONVEYOR_E2E_BACKEND picks the database. With "sqlite", the default, each
test gets its own SQLite file in a temporary directory. With "postgres", one
throwaway PostgreSQL cluster runs per pytest session (see pg_cluster.py) and
each test gets its own database in it. CONVEYOR_E2E_PG_LISTEN=tcp makes that
cluster listen on 127.0.0.1 instead of a Unix socket.
"""

import http.client
import json
import os
import pathlib
import re
import signal
import subprocess
import threading
import time
from urllib.parse import quote

import pytest

import pg_cluster

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("CONVEYOR_BINARY", str(REPOSITORY / "build" / "release" / "conveyor"))

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
STARTUP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 90.0

TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3,9}Z$")
UUID_V7_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# CTest sets CONVEYOR_E2E_SANITIZED=1 when the binary is built with
# AddressSanitizer and UndefinedBehaviorSanitizer, which slow it down.
SANITIZED = os.environ.get("CONVEYOR_E2E_SANITIZED") == "1"

BACKENDS = ("sqlite", "postgres")
BACKEND = os.environ.get("CONVEYOR_E2E_BACKEND", "sqlite")
SQLITE_PREFIX = "sqlite:"


class ServerProcess:
    """One started conveyor process with its captured log lines."""

    def __init__(self, command, args, database, env):
        self.command = command
        self.database = database
        self.port = None
        self.base_url = None
        self._lines = []
        self._lines_lock = threading.Lock()
        self._listening = threading.Event()
        self.proc = subprocess.Popen(
            [BINARY, command, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._readers = [
            threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream):
        # Reads until end of file so the pipe never fills, and spots the
        # line that names the bound port.
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._lines_lock:
                self._lines.append(line)
            if self.port is None:
                port = _listening_port(line)
                if port is not None:
                    self.port = port
                    self.base_url = f"http://127.0.0.1:{port}"
                    self._listening.set()
        stream.close()

    @property
    def db_path(self):
        """The SQLite file of this process; an error on any other backend."""
        if not self.database.startswith(SQLITE_PREFIX):
            raise AssertionError(
                f"db_path names a SQLite file, but this process uses {self.database.split(':')[0]}; "
                "share the database through .database, or mark the test sqlite_only"
            )
        return self.database[len(SQLITE_PREFIX) :]

    def log_lines(self):
        with self._lines_lock:
            return list(self._lines)

    def log_tail(self, count=40):
        return "\n".join(self.log_lines()[-count:])

    def wait_listening(self, timeout=STARTUP_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._listening.wait(0.05):
                return
            if self.proc.poll() is not None:
                break
        self.kill()
        raise AssertionError(
            f"conveyor {self.command} did not log a listening line within {timeout}s "
            f"(exit code {self.proc.returncode}); log:\n{self.log_tail()}"
        )

    def request(self, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT_S):
        """Send one request; returns (status, lower-case headers, JSON or bytes).

        A dict or list body is sent as JSON, a str as UTF-8 and bytes as they
        are. Each gets Content-Type application/json unless headers set it,
        and a header set to None is left out.
        """
        assert self.port is not None, "this process does not listen"
        send_headers = {}
        payload = None
        if isinstance(body, (dict, list)):
            payload = json.dumps(body).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        elif isinstance(body, str):
            payload = body.encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        elif body is not None:
            payload = bytes(body)
            send_headers["Content-Type"] = "application/json"
        send_headers.update(headers or {})
        send_headers = {name: value for name, value in send_headers.items() if value is not None}

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=payload, headers=send_headers)
            response = connection.getresponse()
            raw = response.read()
            response_headers = {}
            for name, value in response.getheaders():
                key = name.lower()
                if key in response_headers:
                    response_headers[key] += ", " + value
                else:
                    response_headers[key] = value
            return response.status, response_headers, _decode_body(response_headers, raw)
        finally:
            connection.close()

    def terminate(self, timeout=60.0):
        """Send SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"conveyor {self.command} did not exit within {timeout}s of SIGTERM; "
                f"log:\n{self.log_tail()}"
            )

    def kill(self):
        """Send SIGKILL and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(timeout=30)

    def join_readers(self, timeout=5.0):
        for reader in self._readers:
            reader.join(timeout)


def _listening_port(line):
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("msg") != "listening":
        return None
    port = record.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or port <= 0:
        return None
    return port


def _decode_body(headers, raw):
    content_type = headers.get("content-type", "")
    if "json" in content_type and raw:
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return raw
    return raw


def hermetic_environment(extra):
    # Settings must come from the test's flags alone, never from a CONVEYOR_*
    # variable of the shell that runs the suite, nor from a PG* variable that
    # libpq would read.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CONVEYOR_") and not name.startswith("PG")
    }
    env.update(extra or {})
    return env


def pytest_configure(config):
    if BACKEND not in BACKENDS:
        raise pytest.UsageError(
            f"CONVEYOR_E2E_BACKEND={BACKEND!r} is not a backend; use one of {', '.join(BACKENDS)}"
        )
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test needs the SQLite file; skipped on other backends"
    )
    config.addinivalue_line(
        "markers", "postgres_only(reason): the test needs a PostgreSQL server it controls"
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker_name, backend in (("sqlite_only", "sqlite"), ("postgres_only", "postgres")):
            marker = item.get_closest_marker(marker_name)
            if marker is None or BACKEND == backend:
                continue
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"needs the {backend} backend: {reason}"))


def pytest_report_header(config):
    return f"conveyor e2e backend: {BACKEND}; binary: {BINARY}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Keeps each phase's report on the test item so that fixture teardown can
    # tell whether the test failed.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def postgres_cluster():
    """One PostgreSQL cluster for the whole session, removed at its end (postgres backend only)."""
    if BACKEND != "postgres":
        pytest.skip("the PostgreSQL cluster is used only with CONVEYOR_E2E_BACKEND=postgres")
    cluster = pg_cluster.PostgresCluster(listen=os.environ.get("CONVEYOR_E2E_PG_LISTEN", "socket"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def new_database(tmp_path_factory, request):
    """Return a function that creates an empty database and returns its --database value.

    With SQLite that is a file name in a fresh temporary directory; with
    PostgreSQL a new database in the session's cluster, dropped at teardown.
    """
    cluster = request.getfixturevalue("postgres_cluster") if BACKEND == "postgres" else None
    created = []

    def make():
        if cluster is None:
            return SQLITE_PREFIX + str(tmp_path_factory.mktemp("conveyor") / "conveyor.db")
        name = cluster.create_database()
        created.append(name)
        return cluster.url(name)

    yield make

    for name in created:
        if not cluster.is_running():
            continue
        try:
            cluster.drop_database(name)
        except pg_cluster.ClusterError as error:
            print(f"could not drop database {name}: {error}")


@pytest.fixture
def start_server(new_database, request):
    """Return a function that starts one conveyor process and waits for it.

    start_server(command="serve", *extra_args, database=None, db_path=None,
    env=None): the process uses database (a --database value, such as another
    process's .database), or the SQLite file db_path, or else a fresh
    database of the chosen backend. serve and api wait for the listening
    line; worker and migrate return at once. Every process is killed by PID
    at teardown.
    """
    started = []

    def start(command="serve", *extra_args, database=None, db_path=None, env=None):
        if db_path is not None:
            assert database is None, "pass database or db_path, not both"
            assert BACKEND == "sqlite", "db_path names a SQLite file; mark the test sqlite_only"
            database = SQLITE_PREFIX + str(db_path)
        if database is None:
            database = new_database()
        args = []
        listens = command in ("serve", "api")
        if listens:
            args += ["--listen", "127.0.0.1:0"]
        args += ["--database", database, "--log-format", "json", *extra_args]
        server = ServerProcess(command, args, database, hermetic_environment(env))
        started.append(server)
        if listens:
            server.wait_listening()
        return server

    yield start

    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        server.join_readers()

    # The log tails of a failed test's processes appear under its captured
    # output.
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for server in started:
            print(f"--- conveyor {server.command} (pid {server.proc.pid}, exit {server.proc.returncode})")
            print(server.log_tail(60))


# "serve" runs the API and workers in one process; "split" runs one api and
# two worker processes on one database. CTest runs the main files in both
# topologies.
TOPOLOGY = os.environ.get("CONVEYOR_E2E_TOPOLOGY", "serve")


@pytest.fixture
def server(start_server):
    """The system under test, with no simulated delay and fault injection on.

    In the split topology this returns the api process; its two workers
    share its database.
    """
    flags = ("--simulated-delay", "0", "--enable-fault-injection")
    if TOPOLOGY == "split":
        api = start_server("api", *flags)
        for _ in range(2):
            start_server("worker", *flags, database=api.database)
        return api
    return start_server("serve", *flags)


def submit(server, body, headers=None):
    """Submit a task and require 202; returns the task resource."""
    if isinstance(body, str):
        body = {"text": body}
    status, _, task = server.request("POST", "/v1/tasks", body, headers)
    assert status == 202, f"submit returned {status}: {task!r}"
    return task


def get_task(server, task_id, query=""):
    status, _, task = server.request("GET", f"/v1/tasks/{task_id}{query}")
    assert status == 200, f"GET task {task_id} returned {status}: {task!r}"
    return task


def wait_for_status(server, task_id, statuses, timeout=30.0):
    """Poll a task until its status is one of statuses; returns the task.

    Fails with the last representation and the server's log tail when the
    deadline passes first.
    """
    if isinstance(statuses, str):
        statuses = {statuses}
    statuses = set(statuses)
    deadline = time.monotonic() + timeout
    task = None
    while True:
        task = get_task(server, task_id)
        if task["status"] in statuses:
            return task
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"task {task_id} did not reach {sorted(statuses)} within {timeout}s; "
                f"last: {task!r}; log:\n{server.log_tail()}"
            )
        time.sleep(0.05)


def wait_until(predicate, timeout, message, interval=0.05):
    """Call predicate until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout}s)")
        time.sleep(interval)


def list_all(server, query=""):
    """Walk every page of GET /v1/tasks; returns the items in page order."""
    items = []
    path = "/v1/tasks" + (f"?{query}" if query else "")
    for _ in range(100_000):
        status, _, page = server.request("GET", path)
        assert status == 200, f"GET {path} returned {status}: {page!r}"
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        separator = "&" if query else ""
        path = f"/v1/tasks?{query}{separator}cursor={quote(cursor, safe='')}"
    raise AssertionError("pagination did not end within 100000 pages")
