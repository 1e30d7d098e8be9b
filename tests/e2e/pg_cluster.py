"""A throwaway PostgreSQL 15 cluster for the end-to-end suite.

The cluster lives in a fresh temporary directory: initdb with trust
authentication, then one postmaster that listens on a Unix socket in that
directory only (or on 127.0.0.1 when asked). PostgreSQL refuses to run as
root, so under root initdb and postgres run as the `postgres` system user
through runuser, with the directory owned by that user.

Settings chosen for a test cluster: fsync is off, which keeps every commit
safe from a crash of PostgreSQL processes (the data still reaches the kernel)
but not from a crash of the machine. A cluster created with durable=True
(the benchmarks use one) runs with fsync and synchronous_commit on, so each
commit waits for its WAL flush to the disk.

Run as a script with `--watch OWNER_PID BASE_DIR`, this module is the
watchdog that each cluster starts: when the owning test process dies without
cleaning up, it stops the postmaster and removes the directory.
"""

import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from urllib.parse import quote

PG_BIN = pathlib.Path(os.environ.get("CONVEYOR_E2E_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
SYSTEM_USER = "postgres"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 120.0
# A Unix socket path must fit in sun_path (108 bytes on Linux) with the
# ".s.PGSQL.NNNNN" file name appended.
MAX_SOCKET_DIR_LENGTH = 80
WATCHDOG_POLL_S = 1.0
WATCHDOG_MAX_S = 3 * 3600.0

SHUTDOWN_SIGNALS = {
    # Waits for every client session to end; a connection pool never does.
    "smart": signal.SIGTERM,
    # Disconnects clients and rolls back open transactions, like `pg_ctl stop`.
    "fast": signal.SIGINT,
    # Exits at once; the next start runs crash recovery.
    "immediate": signal.SIGQUIT,
}


class ClusterError(RuntimeError):
    """A cluster command failed; the message carries the command's output or the log tail."""


def _clean_environment():
    # libpq and the server read PG* variables such as PGHOST or PGOPTIONS;
    # only the arguments given here may decide where a command connects.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return env


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cluster_processes(data_dir):
    """Return the PIDs of live processes whose working directory is data_dir.

    The postmaster and every backend it forks change into the data
    directory. Each backend starts a session of its own, so the working
    directory, not the process group, distinguishes the processes of this
    cluster from any other PostgreSQL on the machine. Zombies have no working
    directory and are left out.
    """
    target = str(data_dir)
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == target:
                members.append(int(entry))
        except OSError:
            continue
    return members


def _kill_cluster_processes(data_dir, grace):
    """Wait up to grace seconds for the cluster's processes to exit, then SIGKILL the rest."""
    deadline = time.monotonic() + grace
    while _cluster_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in _cluster_processes(data_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _cluster_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)


def _read_postmaster_pid(data_dir):
    try:
        first_line = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return None
    return int(first_line) if first_line.strip().isdigit() else None


def _parent_pid(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read().decode("ascii", errors="replace")
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[1])


class PostgresCluster:
    """One PostgreSQL cluster in a temporary directory, started and stopped by PID.

    listen is "socket" (a Unix socket in the cluster directory, no TCP) or
    "tcp" (127.0.0.1 on a free port). durable=True turns fsync and
    synchronous_commit on; the default leaves fsync off. Not thread-safe: one
    test thread drives it.
    """

    def __init__(self, listen="socket", durable=False):
        if listen not in ("socket", "tcp"):
            raise ValueError(f"listen must be 'socket' or 'tcp', not {listen!r}")
        self.listen = listen
        self.durable = durable
        self.as_system_user = os.geteuid() == 0
        self.base_dir = None
        self.data_dir = None
        self.socket_dir = None
        self.log_path = None
        self.port = None
        self.postmaster_pid = None
        self._launcher = None
        self._log_file = None
        self._watchdog = None
        self._database_count = 0

    # --- life cycle ---------------------------------------------------------

    def start(self):
        """Create the cluster on first use, start the postmaster and wait for connections."""
        if self.base_dir is None:
            self._create()
        if self._launcher is not None and self._launcher.poll() is None:
            raise ClusterError("the cluster is already running")
        self._launch()
        self._wait_ready()

    def stop(self, mode="fast", timeout=STOP_TIMEOUT_S):
        """Stop the postmaster with the signal for mode; SIGKILL the cluster's processes after timeout.

        mode is a key of SHUTDOWN_SIGNALS. Returns the shutdown time in
        seconds. Stopping a stopped cluster does nothing.
        """
        if self._launcher is None or self._launcher.poll() is not None:
            return 0.0
        started = time.monotonic()
        self._signal_postmaster(SHUTDOWN_SIGNALS[mode])
        try:
            self._launcher.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_postmaster(signal.SIGKILL)
            self._launcher.wait(timeout=STOP_TIMEOUT_S)
        _kill_cluster_processes(self.data_dir, grace=0)
        return time.monotonic() - started

    def restart(self, mode="fast", down_for=0.0):
        """Stop, stay down for down_for seconds, and start again on the same data directory and port.

        Returns the seconds from the stop signal until it accepts connections again.
        """
        went_down = time.monotonic()
        self.stop(mode)
        time.sleep(down_for)
        self.start()
        return time.monotonic() - went_down

    def kill(self):
        """SIGKILL the postmaster, let its orphaned backends notice and exit, then start again.

        Returns the seconds from the kill until it accepts connections again.
        """
        killed = time.monotonic()
        self._signal_postmaster(signal.SIGKILL)
        self._launcher.wait(timeout=STOP_TIMEOUT_S)
        # Backends exit by themselves once they see the postmaster gone. A
        # new postmaster rejects the data directory while any of them is
        # still attached to the old shared memory segment.
        _kill_cluster_processes(self.data_dir, grace=STOP_TIMEOUT_S / 3)
        self.start()
        return time.monotonic() - killed

    def destroy(self):
        """Stop the cluster if it runs, end its watchdog and remove its directory."""
        try:
            self.stop()
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            if self._watchdog is not None and self._watchdog.poll() is None:
                self._watchdog.kill()
                self._watchdog.wait(timeout=STOP_TIMEOUT_S)
            if self.base_dir is not None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None

    def is_running(self):
        return self._launcher is not None and self._launcher.poll() is None

    # --- databases ----------------------------------------------------------

    def url(self, database):
        """Return a libpq connection URL for database as the superuser."""
        if self.listen == "tcp":
            return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql:///{database}?host={host}&port={self.port}&user={SUPERUSER}"

    def create_database(self):
        """Create an empty database with a name used nowhere else; returns the name."""
        self._database_count += 1
        name = f"e2e_{self._database_count:04d}_{uuid.uuid4().hex[:8]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name):
        """Drop a database, ending any session still connected to it."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql, database="postgres", timeout=COMMAND_TIMEOUT_S):
        """Run SQL through psql as the superuser; returns its unaligned output."""
        host = "127.0.0.1" if self.listen == "tcp" else str(self.socket_dir)
        command = [
            str(PG_BIN / "psql"), "--no-psqlrc", "--quiet", "--no-align", "--tuples-only",
            "--set", "ON_ERROR_STOP=1", "--host", host, "--port", str(self.port),
            "--username", SUPERUSER, "--dbname", database, "--command", sql,
        ]
        completed = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, env=_clean_environment(),
            timeout=timeout,
        )
        if completed.returncode != 0:
            raise ClusterError(
                f"psql exited {completed.returncode} on {sql!r}: "
                f"{completed.stderr.decode('utf-8', errors='replace').strip()}"
            )
        return completed.stdout.decode("utf-8", errors="replace").strip()

    def log_tail(self, count=40):
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-count:])

    # --- internals ----------------------------------------------------------

    def _create(self):
        parent = tempfile.gettempdir()
        if len(parent) > MAX_SOCKET_DIR_LENGTH - 30:
            parent = "/tmp"
        self.base_dir = pathlib.Path(tempfile.mkdtemp(prefix="conveyor-pg-", dir=parent))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_path = self.base_dir / "postgres.log"
        self.socket_dir.mkdir()
        # The test process (and conveyor processes it starts) must reach the
        # socket directory whichever user owns it.
        os.chmod(self.base_dir, 0o755)
        os.chmod(self.socket_dir, 0o755)
        if self.as_system_user:
            owner = pwd.getpwnam(SYSTEM_USER)
            for path in (self.base_dir, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.port = _free_port()
        self._start_watchdog()

        initdb = self._as_owner([
            str(PG_BIN / "initdb"), "--pgdata", str(self.data_dir), "--auth=trust",
            f"--username={SUPERUSER}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
            "--no-instructions",
        ])
        completed = subprocess.run(
            initdb, stdin=subprocess.DEVNULL, capture_output=True, env=_clean_environment(),
            timeout=COMMAND_TIMEOUT_S,
        )
        if completed.returncode != 0:
            output = completed.stdout + completed.stderr
            raise ClusterError(
                f"initdb exited {completed.returncode}: {output.decode(errors='replace')}"
            )

    def _as_owner(self, command):
        if self.as_system_user:
            return ["runuser", "-u", SYSTEM_USER, "--", *command]
        return command

    def _launch(self):
        listen_addresses = "127.0.0.1" if self.listen == "tcp" else ""
        command = self._as_owner([
            str(PG_BIN / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-c", f"listen_addresses={listen_addresses}",
            "-c", f"unix_socket_directories={self.socket_dir}",
            *self._durability_settings(),
            "-c", "max_connections=300",
        ])
        if self._log_file is None:
            self._log_file = open(self.log_path, "ab")
        # A session of its own keeps terminal signals meant for the test
        # process away from the postmaster.
        self._launcher = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            env=_clean_environment(), start_new_session=True,
        )
        self.postmaster_pid = None

    def _durability_settings(self):
        if self.durable:
            return ["-c", "fsync=on", "-c", "synchronous_commit=on"]
        return ["-c", "fsync=off"]

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._launcher.poll() is not None:
                raise ClusterError(
                    f"postgres exited with {self._launcher.returncode} during start; "
                    f"log:\n{self.log_tail()}"
                )
            if self.postmaster_pid is None:
                self.postmaster_pid = self._find_postmaster()
            if self.postmaster_pid is not None and self._accepts_connections():
                return
            time.sleep(0.1)
        self._launcher.kill()
        self._launcher.wait(timeout=STOP_TIMEOUT_S)
        _kill_cluster_processes(self.data_dir, grace=0)
        raise ClusterError(
            f"postgres did not accept connections within {START_TIMEOUT_S}s; log:\n{self.log_tail()}"
        )

    def _find_postmaster(self):
        # Under runuser the postmaster is runuser's child; the lock file
        # names it. A lock file left by a killed postmaster names a PID that
        # is not our launcher's child, and is skipped.
        pid = _read_postmaster_pid(self.data_dir)
        if pid is None:
            return None
        expected_parent = self._launcher.pid if self.as_system_user else None
        if expected_parent is None:
            return pid if pid == self._launcher.pid else None
        return pid if _parent_pid(pid) == expected_parent else None

    def _accepts_connections(self):
        host = "127.0.0.1" if self.listen == "tcp" else str(self.socket_dir)
        probe = subprocess.run(
            [str(PG_BIN / "pg_isready"), "--quiet", "--host", host, "--port", str(self.port),
             "--username", SUPERUSER, "--dbname", "postgres", "--timeout", "2"],
            stdin=subprocess.DEVNULL, capture_output=True, env=_clean_environment(), timeout=30,
        )
        return probe.returncode == 0

    def _signal_postmaster(self, signal_number):
        if self.postmaster_pid is None:
            raise ClusterError("no postmaster PID is known; the cluster did not finish starting")
        try:
            os.kill(self.postmaster_pid, signal_number)
        except ProcessLookupError:
            pass

    def _start_watchdog(self):
        self._watchdog = subprocess.Popen(
            [sys.executable, str(pathlib.Path(__file__).resolve()), "--watch", str(os.getpid()),
             str(self.base_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


def _runs_in(pid, base_dir):
    """Tell whether pid is a postgres process whose command line names base_dir."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline_file:
            cmdline = cmdline_file.read().decode("utf-8", errors="replace")
    except OSError:
        return False
    return str(base_dir) in cmdline


def _watch(owner_pid, base_dir):
    """Wait for owner_pid to end, then stop this cluster's postmaster and remove base_dir."""
    deadline = time.monotonic() + WATCHDOG_MAX_S
    while time.monotonic() < deadline:
        try:
            os.kill(owner_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(WATCHDOG_POLL_S)
    if not base_dir.exists():
        return
    pid = _read_postmaster_pid(base_dir / "data")
    if pid is not None and _runs_in(pid, base_dir):
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            pass
    _kill_cluster_processes(base_dir / "data", grace=STOP_TIMEOUT_S)
    shutil.rmtree(base_dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--watch":
        _watch(int(sys.argv[2]), pathlib.Path(sys.argv[3]))
    else:
        sys.exit(f"usage: {sys.argv[0]} --watch OWNER_PID BASE_DIR")
