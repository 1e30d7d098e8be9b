"""Runs wrk with one of the bench/wrk scripts and parses its WRKJSON line."""

import json
import os
import shlex
import signal
import time

from . import processes

WRK_TIMEOUT = "10s"
# wrk gets this long past its -d duration to print its report and exit.
EXIT_MARGIN_S = 30.0
POLL_INTERVAL_S = 0.2


class WrkError(RuntimeError):
    """wrk failed or printed no WRKJSON line."""


def parse_report(text):
    """Return the object of the last WRKJSON line of wrk's output."""
    for line in reversed(text.splitlines()):
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON "):])
    raise WrkError("wrk printed no WRKJSON line")


class Load:
    """The script, URL and load shape of one wrk run."""

    def __init__(self, script, url, connections, threads, duration_s, settings=None):
        self.script = script
        self.url = url
        self.threads = max(1, min(threads, connections))
        self.connections = connections
        self.duration_s = duration_s
        # BENCH_* variables read by bench/wrk/common.lua.
        self.settings = {"BENCH_THREADS": str(self.threads)}
        for name, value in (settings or {}).items():
            self.settings[name] = str(value)

    def argv(self):
        return ["wrk", f"-t{self.threads}", f"-c{self.connections}",
                f"-d{self.duration_s}s", "--timeout", WRK_TIMEOUT, "-s", str(self.script),
                self.url]

    def command_line(self):
        """Return the command as a shell line, settings first."""
        variables = [f"{name}={shlex.quote(value)}" for name, value in sorted(self.settings.items())]
        return " ".join([*variables, shlex.join(self.argv())])


def run(registry, load, log_dir, label, cpu_pids=(), stop_when=None):
    """Run wrk for load; return its report with CPU times and the command line.

    cpu_pids maps names to PIDs whose process trees' CPU time is measured
    over the run. stop_when, when given, is called every POLL_INTERVAL_S
    seconds; once it returns true, wrk gets SIGINT, which makes it stop early
    and still print its report.
    """
    stdout_path = log_dir / f"{label}.out"
    log_path = log_dir / f"{label}.log"
    environment = dict(os.environ)
    environment.update(load.settings)
    cpu_before = {name: processes.tree_cpu_seconds(pid) for name, pid in dict(cpu_pids).items()}
    started = time.monotonic()
    child = registry.start("wrk", load.argv(), log_path, env=environment, stdout_path=stdout_path)
    deadline = started + load.duration_s + EXIT_MARGIN_S
    stopped_early = False
    try:
        while child.wait(POLL_INTERVAL_S) is None:
            if not stopped_early and stop_when is not None and stop_when():
                child.signal(signal.SIGINT)
                stopped_early = True
            if time.monotonic() > deadline:
                raise WrkError(f"wrk did not exit within {load.duration_s + EXIT_MARGIN_S:.0f} s")
    finally:
        registry.stop(child, grace=5.0)
    elapsed = time.monotonic() - started

    output = stdout_path.read_text(encoding="utf-8", errors="replace")
    if child.popen.returncode != 0:
        raise WrkError(f"wrk exited with status {child.popen.returncode}: "
                       f"{processes.read_log_tail(log_path)}")
    try:
        report = parse_report(output)
    except WrkError as error:
        raise WrkError(f"{error}; stderr: {processes.read_log_tail(log_path)}") from None
    if report["requests"] == 0:
        raise WrkError(f"wrk completed no request; stderr: {processes.read_log_tail(log_path)}")
    # wrk prints script errors on stderr and goes on with an empty request,
    # so any stderr output means the run did not send what it should have.
    script_errors = processes.read_log_tail(log_path).strip()
    if script_errors:
        raise WrkError(f"the wrk script failed: {script_errors}")

    cpu = {"elapsed_s": round(elapsed, 3)}
    if child.rusage is not None:
        cpu["wrk_s"] = round(child.rusage.ru_utime + child.rusage.ru_stime, 3)
    for name, pid in dict(cpu_pids).items():
        cpu[f"{name}_s"] = round(processes.tree_cpu_seconds(pid) - cpu_before[name], 3)
    return {"command": load.command_line(), "report": report, "cpu": cpu,
            "stopped_early": stopped_early}
