"""The processes and databases a benchmark scenario runs against.

Everything listens on 127.0.0.1 on a free port. SQLite files and the
PostgreSQL cluster live under one temporary directory, so both databases
write to the same disk.
"""

import http.client
import json
import pathlib
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
import urllib.parse

from . import processes

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPOSITORY / "tests" / "e2e"))
import pg_cluster  # noqa: E402

REFERENCE_START = REPOSITORY / "bench" / "reference" / "start.py"
SYSTEM_PYTHON = "/usr/bin/python3"
READY_TIMEOUT_S = 60.0
REFERENCE_READY_TIMEOUT_S = 120.0
# The reference waits up to 30 s for each of its three children to stop.
REFERENCE_STOP_GRACE_S = 120.0
HTTP_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.1
CONVEYOR_TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
REFERENCE_TERMINAL = ("COMPLETED", "FAILED")


class ServiceError(RuntimeError):
    """A service did not start or returned an unexpected response."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _sql_list(values):
    return ", ".join(f"'{value}'" for value in values)


class TaskCounts:
    """How many tasks a table holds, and how many of them are terminal or failed."""

    def __init__(self, total, terminal, failed):
        self.total = total
        self.terminal = terminal
        self.failed = failed


class SqliteDatabase:
    """A Conveyor SQLite file, read directly for task counts and timestamps."""

    backend = "sqlite"

    def __init__(self, path):
        self.path = path
        self.url = f"sqlite:{path}"

    def _query(self, sql):
        # A fresh short-lived connection per query: it takes no lock between
        # polls, so it cannot hold back the server's WAL checkpoints.
        connection = sqlite3.connect(str(self.path), timeout=30.0)
        try:
            return connection.execute(sql).fetchone()
        finally:
            connection.close()

    def counts(self):
        if not self.path.exists():
            return TaskCounts(0, 0, 0)
        try:
            row = self._query(
                "SELECT count(*), "
                f"coalesce(sum(status IN ({_sql_list(CONVEYOR_TERMINAL)})), 0), "
                "coalesce(sum(status = 'FAILED'), 0) FROM tasks")
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return TaskCounts(0, 0, 0)
            raise
        return TaskCounts(*row)

    def span_ms(self):
        """Return (first created_at, last finished_at) in Unix milliseconds."""
        return tuple(self._query("SELECT min(created_at), max(finished_at) FROM tasks"))

    def size_bytes(self):
        return sum(path.stat().st_size for path in self.path.parent.glob(self.path.name + "*"))


class PostgresDatabase:
    """A database in the benchmark's PostgreSQL cluster, read through psql."""

    backend = "postgresql"
    table = "tasks"
    terminal = CONVEYOR_TERMINAL

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.url = cluster.url(name)

    def _query(self, sql):
        output = self.cluster.psql(sql, database=self.name)
        return output.splitlines()[-1].split("|")

    def _table_exists(self):
        return self._query(f"SELECT to_regclass('public.{self.table}') IS NOT NULL")[0] == "t"

    def counts(self):
        if not self._table_exists():
            return TaskCounts(0, 0, 0)
        row = self._query(
            f"SELECT count(*), count(*) FILTER (WHERE status IN ({_sql_list(self.terminal)})), "
            f"count(*) FILTER (WHERE status = 'FAILED') FROM {self.table}")
        return TaskCounts(*(int(value) for value in row))

    def span_ms(self):
        """Return (first created_at, last finished_at) in Unix milliseconds."""
        row = self._query(f"SELECT min(created_at), max(finished_at) FROM {self.table}")
        return tuple(int(value) if value else None for value in row)

    def size_bytes(self):
        return int(self._query(f"SELECT pg_database_size('{self.name}')")[0])


class ReferenceDatabase(PostgresDatabase):
    """The reference service's table reference_tasks, with timestamptz columns."""

    table = "reference_tasks"
    terminal = REFERENCE_TERMINAL

    def span_ms(self):
        row = self._query(
            "SELECT (extract(epoch FROM min(created_at)) * 1000)::bigint, "
            "(extract(epoch FROM max(finished_at)) * 1000)::bigint FROM reference_tasks")
        return tuple(int(value) if value else None for value in row)


class ApiClient:
    """A keep-alive HTTP/1.1 client for one server on 127.0.0.1."""

    def __init__(self, port):
        self.port = port
        self._connection = None

    def request(self, method, path, body=None):
        """Send one request; return (status, decoded JSON body or None)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=HTTP_TIMEOUT_S)
            try:
                self._connection.request(method, path, body=payload, headers=headers)
                response = self._connection.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                # The server may close an idle keep-alive connection; one
                # retry on a new connection covers that.
                self.close()
                if attempt == 1:
                    raise
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            decoded = None
        return response.status, decoded

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def healthy(self):
        try:
            status, _ = self.request("GET", "/healthz")
        except OSError:
            self.close()
            return False
        return status == 200


class Workspace:
    """The temporary directory, the children and the PostgreSQL cluster of one driver run."""

    def __init__(self, parent_dir, keep):
        if parent_dir is not None:
            # pg_cluster creates its directory under tempfile's directory.
            tempfile.tempdir = str(parent_dir)
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.keep = keep
        self.registry = processes.ChildRegistry()
        self.cluster = None
        self._sequence = 0

    def next_label(self, stem):
        self._sequence += 1
        return f"{self._sequence:04d}-{stem}"

    def postgres(self):
        """Return the durable PostgreSQL cluster, starting it on first use."""
        if self.cluster is None:
            cluster = pg_cluster.PostgresCluster(listen="tcp", durable=True)
            self.cluster = cluster
            cluster.start()
        return self.cluster

    def database(self, backend):
        """Return a new, empty Conveyor database on backend."""
        label = self.next_label(backend)
        if backend == "sqlite":
            return SqliteDatabase(self.root / f"{label}.db")
        cluster = self.postgres()
        return PostgresDatabase(cluster, cluster.create_database())

    def reference_database(self):
        cluster = self.postgres()
        return ReferenceDatabase(cluster, cluster.create_database())

    def drop(self, database):
        """Remove a database's files or drop it from the cluster."""
        if isinstance(database, SqliteDatabase):
            for path in database.path.parent.glob(database.path.name + "*"):
                path.unlink()
        else:
            database.cluster.drop_database(database.name)

    def close(self):
        """Stop every child and the cluster; remove the directory unless asked to keep it."""
        try:
            self.registry.stop_all()
        finally:
            if self.cluster is not None:
                self.cluster.destroy()
                self.cluster = None
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)


class ConveyorProcess:
    """One `conveyor serve`, `api` or `worker` process."""

    def __init__(self, workspace, binary, command, database, extra_args=()):
        self.workspace = workspace
        self.command = command
        self.database = database
        self.port = free_port() if command in ("serve", "api") else None
        argv = [binary, command, "--database", database.url, "--log-level", "warn",
                *extra_args]
        if self.port is not None:
            argv += ["--listen", f"127.0.0.1:{self.port}"]
        self.argv = argv
        label = workspace.next_label(f"conveyor-{command}")
        self.child = workspace.registry.start(
            f"conveyor {command}", argv, workspace.logs / f"{label}.log")
        self.client = ApiClient(self.port) if self.port is not None else None

    @property
    def pid(self):
        return self.child.pid

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self):
        if self.client is None:
            return
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.child.check_running()
            if self.client.healthy():
                return
            time.sleep(POLL_INTERVAL_S)
        raise ServiceError(f"conveyor {self.command} did not respond to GET /healthz on port "
                           f"{self.port} within {READY_TIMEOUT_S:.0f} s")

    def stop(self):
        if self.client is not None:
            self.client.close()
        return self.workspace.registry.stop(self.child)


def start_conveyor(workspace, binary, command, database, extra_args=()):
    """Start a conveyor process and wait until it serves HTTP (serve and api)."""
    process = ConveyorProcess(workspace, binary, command, database, extra_args)
    try:
        process.wait_ready()
    except BaseException:
        process.stop()
        raise
    return process


class ReferenceProcess:
    """bench/reference/start.py: uvicorn, Celery and Redis over PostgreSQL."""

    def __init__(self, workspace, database, simulated_delay_ms):
        self.workspace = workspace
        self.database = database
        self.port = free_port()
        self.argv = [SYSTEM_PYTHON, str(REFERENCE_START), "--database", database.url,
                     "--port", str(self.port), "--simulated-delay-ms", str(simulated_delay_ms)]
        label = workspace.next_label("reference")
        self.stdout_path = workspace.logs / f"{label}.out"
        self.child = workspace.registry.start(
            "reference service", self.argv, workspace.logs / f"{label}.log",
            stdout_path=self.stdout_path)
        self.client = ApiClient(self.port)

    @property
    def pid(self):
        return self.child.pid

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self):
        deadline = time.monotonic() + REFERENCE_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.child.check_running()
            if "ready" in self.stdout_path.read_text(errors="replace").split():
                return
            time.sleep(POLL_INTERVAL_S)
        raise ServiceError(f"the reference service did not print `ready` within "
                           f"{REFERENCE_READY_TIMEOUT_S:.0f} s; log tail:\n"
                           f"{processes.read_log_tail(self.child.log_path)}")

    def stop(self):
        self.client.close()
        return self.workspace.registry.stop(self.child, grace=REFERENCE_STOP_GRACE_S)


def start_reference(workspace, database, simulated_delay_ms):
    process = ReferenceProcess(workspace, database, simulated_delay_ms)
    try:
        process.wait_ready()
    except BaseException:
        process.stop()
        raise
    return process


def walk_list(client, page_size, rows, max_pages):
    """Walk list pages of page_size, newest first, until rows tasks have been read.

    Returns (task ids read, the cursor of the page that starts after them).
    The cursor is None when fewer rows exist.
    """
    ids = []
    cursor = None
    for _ in range(max_pages):
        if len(ids) >= rows:
            break
        path = f"/v1/tasks?limit={page_size}"
        if cursor is not None:
            path += "&cursor=" + urllib.parse.quote(cursor, safe="")
        status, page = client.request("GET", path)
        if status != 200:
            raise ServiceError(f"GET {path} returned status {status}: {page}")
        ids.extend(item["task_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return ids, cursor
