"""Child processes of the benchmark driver, and their CPU time and memory from /proc.

Every child starts in a session of its own, so a Ctrl-C on the terminal
reaches only the driver, which then stops the children in order. A child also
gets SIGTERM from the kernel when the driver dies without cleaning up
(PR_SET_PDEATHSIG). Children are stopped by their PID: SIGTERM, then SIGKILL
to the child's process group after a bounded wait.
"""

import ctypes
import os
import signal
import subprocess
import time

PR_SET_PDEATHSIG = 1
DEFAULT_STOP_GRACE_S = 40.0
KILL_WAIT_S = 10.0
POLL_INTERVAL_S = 0.05
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class ChildError(RuntimeError):
    """A child process failed; the message names it and quotes its log tail."""


def _die_with_parent(parent_pid):
    """Return a preexec_fn that makes the child get SIGTERM when parent_pid exits."""

    def set_death_signal():
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died between fork and prctl.
        if os.getppid() != parent_pid:
            os._exit(1)

    return set_death_signal


def read_log_tail(path, lines=30):
    try:
        with open(path, "rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            size = log_file.tell()
            log_file.seek(max(0, size - 16384))
            text = log_file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Child:
    """One process started by the driver, with stdout and stderr in log files."""

    def __init__(self, name, argv, log_path, env=None, stdout_path=None, cwd=None):
        self.name = name
        self.argv = [str(part) for part in argv]
        self.log_path = log_path
        self.stdout_path = stdout_path or log_path
        self.started_monotonic = time.monotonic()
        self.started_wall = time.time()
        with open(log_path, "ab") as log_file, open(self.stdout_path, "ab") as out_file:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out_file, stderr=log_file,
                env=env, cwd=cwd, start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        self.pid = self.popen.pid
        self.rusage = None

    def running(self):
        return self.popen.poll() is None

    def check_running(self):
        """Raise ChildError when the child has exited."""
        if self.popen.poll() is not None:
            raise ChildError(f"{self.name} (pid {self.pid}) exited with status "
                             f"{self.popen.returncode}; log tail:\n{read_log_tail(self.log_path)}")

    def signal(self, signal_number):
        if self.popen.returncode is None:
            try:
                os.kill(self.pid, signal_number)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        """Wait up to timeout seconds; return the exit status, or None if still running.

        Reaps the child with wait4 so that its resource usage (CPU time) is
        kept in self.rusage.
        """
        deadline = time.monotonic() + timeout
        while self.popen.returncode is None:
            try:
                pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.popen.returncode = self.popen.poll()
                break
            if pid == self.pid:
                self.rusage = rusage
                self.popen.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_INTERVAL_S)
        return self.popen.returncode

    def stop(self, grace=DEFAULT_STOP_GRACE_S):
        """SIGTERM the child, wait up to grace seconds, then SIGKILL its process group.

        Returns the exit status; a status of -9 means the child was killed.
        """
        if self.popen.returncode is not None:
            return self.popen.returncode
        self.signal(signal.SIGTERM)
        if self.wait(grace) is None:
            try:
                # The child leads a session of its own, so its process group
                # id is its PID and the group holds only its own children.
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(KILL_WAIT_S)
        return self.popen.returncode


class ChildRegistry:
    """The children that are still running, so that a failure can stop all of them."""

    def __init__(self):
        self._children = []

    def start(self, *args, **kwargs):
        child = Child(*args, **kwargs)
        self._children.append(child)
        return child

    def stop(self, child, grace=DEFAULT_STOP_GRACE_S):
        status = child.stop(grace)
        if child in self._children:
            self._children.remove(child)
        return status

    def stop_all(self):
        """Stop every child still registered, newest first."""
        while self._children:
            self.stop(self._children[-1])


def _stat_fields(pid):
    """Return the fields of /proc/PID/stat after the command name, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read().decode("ascii", errors="replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def descendants(pid):
    """Return the PIDs of every live descendant of pid."""
    children_of = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is not None:
            children_of.setdefault(int(fields[1]), []).append(int(entry))
    found = []
    pending = [pid]
    while pending:
        for child in children_of.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def tree_cpu_seconds(pid):
    """Return the CPU time (user and system) of pid and its live descendants.

    Each process counts its own time and that of the children it has reaped,
    so a short-lived grandchild counts once its parent reaps it.
    """
    total_ticks = 0
    for member in [pid, *descendants(pid)]:
        fields = _stat_fields(member)
        if fields is None:
            continue
        # After the command name: state is field 0, utime 11, stime 12,
        # cutime 13 and cstime 14 (fields 14 to 17 of proc(5)).
        total_ticks += sum(int(value) for value in fields[11:15])
    return total_ticks / CLOCK_TICKS_PER_SECOND


def status_kib(pid, field):
    """Return a kB field of /proc/PID/status such as VmRSS or VmHWM, or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status_file:
            for line in status_file:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
