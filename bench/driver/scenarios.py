"""The benchmark scenarios: each starts its processes, measures, and records the figures.

A record is one measurement of one run: the scenario, the subject measured
(conveyor/sqlite, conveyor/postgresql, reference/postgresql, or a backend or
benchmark name), a variant (such as c64 or paced), the run number, numeric
metrics, and the commands that produced them. The report groups records by
scenario, subject and variant, and gives the median, minimum and maximum of
each metric over the runs.
"""

import json
import shlex
import time
import traceback
import urllib.parse

from . import processes, services, wrk

WRK_SCRIPTS = services.REPOSITORY / "bench" / "wrk"
SUBMIT_SCRIPT = WRK_SCRIPTS / "submit.lua"
GET_SCRIPT = WRK_SCRIPTS / "get_by_id.lua"
FIXED_URL_SCRIPT = WRK_SCRIPTS / "fixed_url.lua"

HEALTHZ_CONNECTIONS = 64
GET_CONNECTIONS = 64
LIST_CONNECTIONS = 64
CAPPED_SUBMIT_CONNECTIONS = 64
LIST_PAGE_SIZE = 20
ID_PAGE_SIZE = 100
# The reference's Celery worker sleeps this long in each task while its
# request path is measured, so that, like `conveyor api` without workers,
# it spends no CPU on running tasks.
REFERENCE_IDLE_WORKER_DELAY_MS = 60_000
# A capped submission ends when the table contains the requested number of
# tasks, or when the count has not grown for this long, because wrk does not
# retry a request that failed.
# The window is longer than wrk's 10 s request timeout.
SUBMIT_STALL_S = 30.0
POLL_INTERVAL_S = 0.25
STORE_BENCH_TIMEOUT_S = 6 * 3600.0
ANALYSIS_BENCH_TIMEOUT_S = 1800.0
IDLE_SETTLE_S = 2.0
KIB = 1024

SCENARIOS = ("analysis", "idle-rss", "commit-ceiling", "healthz", "submit", "get", "list",
             "e2e", "waiting", "cost-growth")
HTTP_SCENARIOS = ("healthz", "submit", "get", "list")


class BenchError(RuntimeError):
    """A scenario step failed; the scenario is recorded as failed and the run goes on."""


def wrk_metrics(result):
    """Return the numeric metrics of one wrk run, CPU use in cores included."""
    report = result["report"]
    latency = report["latency_us"]
    errors = report["errors"]
    metrics = {
        "rate": report["rate"],
        "requests": report["requests"],
        "p50_us": latency["p50"],
        "p90_us": latency["p90"],
        "p99_us": latency["p99"],
        "p999_us": latency["p999"],
        "max_us": latency["max"],
        "status_errors": errors["status"],
        "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
    }
    cpu = result["cpu"]
    for name in ("wrk", "server", "postgres"):
        if f"{name}_s" in cpu and cpu["elapsed_s"] > 0:
            metrics[f"{name}_cpu_cores"] = round(cpu[f"{name}_s"] / cpu["elapsed_s"], 3)
    return metrics


class Target:
    """A running HTTP service that load is sent to."""

    def __init__(self, subject, process, database):
        self.subject = subject
        self.process = process
        self.database = database

    @property
    def url(self):
        return self.process.base_url

    def command_line(self):
        return shlex.join(str(part) for part in self.process.argv)


class Bench:
    """Runs the selected scenarios and collects their records into results."""

    def __init__(self, options, workspace, results):
        self.options = options
        self.workspace = workspace
        self.results = results
        self.registry = workspace.registry

    # --- bookkeeping -----------------------------------------------------------

    def record(self, scenario, subject, variant, run, metrics, commands, details=None):
        entry = {"scenario": scenario, "subject": subject, "variant": variant, "run": run,
                 "metrics": metrics, "commands": commands}
        if details:
            entry["details"] = details
        self.results.add_record(entry)
        first_metrics = ", ".join(f"{name}={value}" for name, value in list(metrics.items())[:6])
        print(f"  {scenario} {subject} {variant} run {run}: {first_metrics}", flush=True)

    def attempt(self, scenario, subject, step):
        """Run step(); on an error, record a failure and return None instead of raising."""
        try:
            return step()
        except (BenchError, services.ServiceError, processes.ChildError, wrk.WrkError,
                services.pg_cluster.ClusterError, OSError, ValueError, KeyError) as error:
            print(f"  FAILED {scenario} {subject}: {error}", flush=True)
            self.results.add_failure({"scenario": scenario, "subject": subject,
                                      "error": str(error),
                                      "traceback": traceback.format_exc(limit=8)})
            return None

    def selected(self, scenario):
        return scenario in self.options.scenarios

    def backends(self):
        return self.options.backends

    def wrk_threads(self, connections):
        return max(1, min(self.options.wrk_threads, connections))

    # --- shared steps ------------------------------------------------------------

    def run_wrk(self, load, label, cpu_pids=(), stop_when=None):
        return wrk.run(self.registry, load, self.workspace.logs,
                       self.workspace.next_label(label), cpu_pids=cpu_pids, stop_when=stop_when)

    def cpu_pids(self, target):
        pids = {"server": target.process.pid}
        if self.workspace.cluster is not None and target.database.backend == "postgresql":
            pids["postgres"] = self.workspace.cluster.postmaster_pid
        return pids

    def submit_until(self, target, limit, timeout_s):
        """Submit until target's table contains limit tasks; return (wrk result, created tasks).

        wrk runs bench/wrk/submit.lua with BENCH_LIMIT set to the tasks still
        missing, and gets SIGINT once the table contains them all or its
        count has stopped growing.
        """
        before = target.database.counts().total
        missing = limit - before
        if missing <= 0:
            return None, 0
        state = {"count": before, "changed": time.monotonic()}

        def submitted_all():
            count = target.database.counts().total
            now = time.monotonic()
            if count >= limit:
                return True
            if count != state["count"]:
                state.update(count=count, changed=now)
                return False
            return now - state["changed"] > SUBMIT_STALL_S

        connections = CAPPED_SUBMIT_CONNECTIONS
        load = wrk.Load(SUBMIT_SCRIPT, target.url + "/", connections,
                        self.wrk_threads(connections), int(timeout_s),
                        {"BENCH_LIMIT": missing})
        result = self.run_wrk(load, "wrk-capped-submit", stop_when=submitted_all)
        created = target.database.counts().total - before
        if created < missing:
            report = result["report"]
            raise BenchError(
                f"{target.subject}: only {created} of {missing} submissions created a task "
                f"(wrk sent {report['limited_requests']}, errors {report['errors']}); "
                f"server log tail:\n{processes.read_log_tail(target.process.child.log_path, 10)}")
        return result, created

    def wait_terminal(self, database, timeout_s, on_poll=None):
        """Wait until every task in database is terminal; return the counts."""
        deadline = time.monotonic() + timeout_s
        while True:
            if on_poll is not None:
                on_poll()
            counts = database.counts()
            if counts.total > 0 and counts.terminal >= counts.total:
                return counts
            if time.monotonic() > deadline:
                raise BenchError(f"{counts.total - counts.terminal} of {counts.total} tasks "
                                 f"were not finished after {timeout_s:.0f} s")
            time.sleep(POLL_INTERVAL_S)

    def run_tool(self, argv, label, timeout_s):
        """Run a measuring tool to completion; return its stdout parsed as JSON."""
        stdout_path = self.workspace.logs / f"{label}.out"
        log_path = self.workspace.logs / f"{label}.log"
        child = self.registry.start(label, argv, log_path, stdout_path=stdout_path)
        try:
            status = child.wait(timeout_s)
            if status is None:
                raise BenchError(f"{argv[0]} did not finish within {timeout_s:.0f} s")
        finally:
            self.registry.stop(child, grace=10.0)
        if child.popen.returncode != 0:
            raise BenchError(f"{' '.join(map(str, argv))} exited with status "
                             f"{child.popen.returncode}: {processes.read_log_tail(log_path)}")
        try:
            return json.loads(stdout_path.read_text())
        except ValueError as error:
            raise BenchError(f"{argv[0]} printed no JSON object: {error}") from None

    def start_conveyor(self, command, database, extra_args=()):
        return services.start_conveyor(self.workspace, self.options.binary, command, database,
                                       extra_args)

    def start_reference(self, database, simulated_delay_ms):
        return services.start_reference(self.workspace, database, simulated_delay_ms)

    def stop(self, process):
        if process is not None:
            process.stop()

    # --- scenarios -------------------------------------------------------------------

    def run_all(self):
        steps = (("analysis", self.analysis), ("idle-rss", self.idle_rss),
                 ("commit-ceiling", self.commit_ceiling))
        for name, step in steps:
            if self.selected(name):
                self.announce(name)
                self.attempt(name, "*", step)
                self.results.save()
        if any(self.selected(name) for name in HTTP_SCENARIOS):
            self.announce("http: " + ", ".join(
                name for name in HTTP_SCENARIOS if self.selected(name)))
            self.attempt("http", "*", self.http_scenarios)
            self.results.save()
        for name, step in (("e2e", self.end_to_end), ("waiting", self.waiting_capacity),
                           ("cost-growth", self.cost_growth)):
            if self.selected(name):
                self.announce(name)
                self.attempt(name, "*", step)
                self.results.save()

    def announce(self, name):
        print(f"[{time.strftime('%H:%M:%S')}] {name}", flush=True)

    def analysis(self):
        """Measure the analyzer's bytes per second, one repetition per run."""
        argv = [str(self.options.analysis_bench), "--benchmark_format=json",
                f"--benchmark_repetitions={self.options.runs}",
                "--benchmark_report_aggregates_only=false"]
        report = self.run_tool(argv, self.workspace.next_label("analysis-bench"),
                               ANALYSIS_BENCH_TIMEOUT_S)
        runs = {}
        for benchmark in report["benchmarks"]:
            if benchmark.get("run_type", "iteration") != "iteration":
                continue
            name = benchmark.get("run_name", benchmark["name"])
            runs[name] = runs.get(name, 0) + 1
            self.record("analysis", name, "single-thread", runs[name],
                        {"bytes_per_second": benchmark["bytes_per_second"],
                         "mb_per_second": round(benchmark["bytes_per_second"] / 1e6, 1)},
                        [shlex.join(map(str, argv))])

    def idle_rss(self):
        """Measure the VmRSS of `conveyor serve` on SQLite after it has been idle for a while."""
        for run in range(1, self.options.runs + 1):
            database = self.workspace.database("sqlite")
            server = self.start_conveyor("serve", database)
            try:
                time.sleep(IDLE_SETTLE_S)
                rss = processes.status_kib(server.pid, "VmRSS")
                hwm = processes.status_kib(server.pid, "VmHWM")
                self.record("idle-rss", "conveyor/sqlite", "serve", run,
                            {"rss_bytes": rss * KIB, "peak_rss_bytes": hwm * KIB},
                            [shlex.join(map(str, server.argv))])
            finally:
                self.stop(server)
                self.workspace.drop(database)

    def commit_ceiling(self):
        """Measure the durable commits per second of one writer, 1 and 100 rows per transaction."""
        databases = {backend: self.workspace.database(backend) for backend in self.backends()}
        for run in range(1, self.options.runs + 1):
            for backend, database in databases.items():
                for rows in (1, 100):
                    self.attempt("commit-ceiling", backend,
                                 lambda: self.one_commit_ceiling(database, rows, run))
        for database in databases.values():
            self.workspace.drop(database)

    def one_commit_ceiling(self, database, rows, run):
        argv = [str(self.options.store_bench), "commit-ceiling", "--database", database.url,
                "--rows-per-transaction", str(rows),
                "--seconds", str(self.options.commit_seconds)]
        report = self.run_tool(argv, self.workspace.next_label("commit-ceiling"),
                               self.options.commit_seconds + 120)
        commit = report.get("commit_latency_us", {})
        self.record("commit-ceiling", database.backend, f"{rows}-rows", run,
                    {"transactions_per_second": report["transactions_per_second"],
                     "rows_per_second": report["rows_per_second"],
                     "commit_p50_us": commit.get("p50"), "commit_p99_us": commit.get("p99")},
                    [shlex.join(map(str, argv))], details={"settings": report.get("settings")})

    # --- the HTTP request path: healthz, submit, get, list -------------------------

    def http_scenarios(self):
        targets = []
        try:
            for backend in self.backends():
                database = self.workspace.database(backend)
                server = self.start_conveyor("api", database)
                targets.append(Target(f"conveyor/{backend}", server, database))
            if self.selected("submit") and self.options.reference:
                database = self.workspace.reference_database()
                reference = self.start_reference(database, REFERENCE_IDLE_WORKER_DELAY_MS)
                targets.append(Target("reference/postgresql", reference, database))
            self.warm_up(targets)
            for run in range(1, self.options.runs + 1):
                if self.selected("submit"):
                    self.submit_run(targets, run)
                if self.selected("healthz"):
                    self.healthz_run(targets, run)
            conveyor_targets = [t for t in targets if t.subject.startswith("conveyor/")]
            if self.selected("get") or self.selected("list"):
                self.read_path(conveyor_targets)
        finally:
            for target in reversed(targets):
                self.stop(target.process)
            for target in targets:
                self.attempt("http", target.subject, lambda: self.workspace.drop(target.database))

    def warm_up(self, targets):
        if self.options.warmup <= 0:
            return
        for target in targets:
            load = wrk.Load(SUBMIT_SCRIPT, target.url + "/", 64, self.wrk_threads(64),
                            self.options.warmup)
            self.attempt("warm-up", target.subject, lambda: self.run_wrk(load, "wrk-warm-up"))

    def submit_run(self, targets, run):
        for connections in self.options.connections:
            for target in targets:
                load = wrk.Load(SUBMIT_SCRIPT, target.url + "/", connections,
                                self.wrk_threads(connections), self.options.duration)
                self.attempt("submit", target.subject,
                             lambda: self.measure("submit", target, f"c{connections}", run, load))

    def measure(self, scenario, target, variant, run, load, details=None, extra_metrics=None):
        result = self.run_wrk(load, f"wrk-{scenario}", cpu_pids=self.cpu_pids(target))
        metrics = wrk_metrics(result)
        metrics.update(extra_metrics or {})
        self.record(scenario, target.subject, variant, run, metrics,
                    [target.command_line(), result["command"]], details)
        return metrics

    def healthz_run(self, targets, run):
        for target in targets:
            if not target.subject.startswith("conveyor/"):
                continue
            load = wrk.Load(FIXED_URL_SCRIPT, target.url + "/healthz", HEALTHZ_CONNECTIONS,
                            self.wrk_threads(HEALTHZ_CONNECTIONS), self.options.duration)
            self.attempt("healthz", target.subject,
                         lambda: self.measure("healthz", target, f"c{HEALTHZ_CONNECTIONS}", run,
                                              load))

    def read_path(self, targets):
        """GET by id (max rate, then paced at half of it) and list pages, per backend."""
        prepared = {}
        for target in targets:
            prepared[target.subject] = self.attempt(
                "get", target.subject, lambda: self.prepare_reads(target))
        for run in range(1, self.options.runs + 1):
            for target in targets:
                plan = prepared.get(target.subject)
                if plan is None:
                    continue
                if self.selected("get"):
                    self.attempt("get", target.subject, lambda: self.get_run(target, plan, run))
                if self.selected("list"):
                    self.attempt("list", target.subject, lambda: self.list_run(target, plan, run))

    def prepare_reads(self, target):
        """Make sure enough tasks exist; write the ids file and find the deep cursor."""
        needed = max(self.options.get_tasks, self.options.list_depth + LIST_PAGE_SIZE)
        self.submit_until(target, needed, self.options.submit_timeout)
        client = target.process.client
        ids, _ = services.walk_list(client, ID_PAGE_SIZE, self.options.get_tasks,
                                    max_pages=needed // ID_PAGE_SIZE + 2)
        ids_path = self.workspace.root / f"ids-{target.subject.replace('/', '-')}.txt"
        ids_path.write_text("\n".join(ids[:self.options.get_tasks]) + "\n")
        walked, cursor = services.walk_list(client, LIST_PAGE_SIZE, self.options.list_depth,
                                            max_pages=needed // LIST_PAGE_SIZE + 2)
        if cursor is None or len(walked) < self.options.list_depth:
            raise BenchError(f"{target.subject}: the list returned fewer than "
                             f"{self.options.list_depth} rows")
        return {"ids_path": ids_path, "id_count": len(ids), "deep_cursor": cursor,
                "deep_rows": len(walked), "tasks": target.database.counts().total}

    def get_run(self, target, plan, run):
        settings = {"BENCH_IDS_FILE": plan["ids_path"]}
        details = {"ids": plan["id_count"], "tasks_in_table": plan["tasks"]}
        load = wrk.Load(GET_SCRIPT, target.url + "/", GET_CONNECTIONS,
                        self.wrk_threads(GET_CONNECTIONS), self.options.duration, settings)
        maximum = self.measure("get", target, f"max-c{GET_CONNECTIONS}", run, load, details)
        half_rate = round(maximum["rate"] / 2)
        paced_settings = dict(settings, BENCH_RATE=half_rate)
        load = wrk.Load(GET_SCRIPT, target.url + "/", self.options.paced_connections, 1,
                        self.options.duration, paced_settings)
        self.measure("get", target, "half-rate", run, load, details,
                     extra_metrics={"target_rate": half_rate})

    def list_run(self, target, plan, run):
        first = f"{target.url}/v1/tasks?limit={LIST_PAGE_SIZE}"
        deep = first + "&cursor=" + urllib.parse.quote(plan["deep_cursor"], safe="")
        for variant, url in (("first-page", first), (f"depth-{plan['deep_rows']}", deep)):
            load = wrk.Load(FIXED_URL_SCRIPT, url, LIST_CONNECTIONS,
                            self.wrk_threads(LIST_CONNECTIONS), self.options.duration)
            self.measure("list", target, variant, run, load, {"tasks_in_table": plan["tasks"]})

    # --- end to end, waiting capacity, cost growth --------------------------------------

    def end_to_end(self):
        for run in range(1, self.options.runs + 1):
            for backend in self.backends():
                self.attempt("e2e", f"conveyor/{backend}",
                             lambda: self.conveyor_end_to_end(backend, run))
            if self.options.reference:
                self.attempt("e2e", "reference/postgresql", lambda: self.reference_end_to_end(run))

    def conveyor_end_to_end(self, backend, run):
        database = self.workspace.database(backend)
        server = self.start_conveyor("serve", database, ["--simulated-delay", "0"])
        try:
            target = Target(f"conveyor/{backend}", server, database)
            self.measure_end_to_end(target, self.options.e2e_tasks, run)
        finally:
            self.stop(server)
            self.workspace.drop(database)

    def reference_end_to_end(self, run):
        database = self.workspace.reference_database()
        reference = self.start_reference(database, 0)
        try:
            target = Target("reference/postgresql", reference, database)
            self.measure_end_to_end(target, self.options.reference_e2e_tasks, run)
        finally:
            self.stop(reference)
            self.workspace.drop(database)

    def measure_end_to_end(self, target, tasks, run):
        """Submit tasks with wrk at c64 and time the first creation to the last finish."""
        cpu_before = processes.tree_cpu_seconds(target.process.pid)
        started = time.monotonic()
        result, created = self.submit_until(target, tasks, self.options.submit_timeout)
        submitted = time.monotonic()
        counts = self.wait_terminal(target.database, self.options.drain_timeout)
        finished = time.monotonic()
        first_created, last_finished = target.database.span_ms()
        span_s = (last_finished - first_created) / 1000.0
        metrics = {
            "tasks": counts.total,
            "failed": counts.failed,
            "span_s": round(span_s, 3),
            "tasks_per_second": round(counts.total / span_s, 1) if span_s > 0 else None,
            "submit_phase_s": round(submitted - started, 3),
            "observed_s": round(finished - started, 3),
            "server_cpu_s": round(processes.tree_cpu_seconds(target.process.pid) - cpu_before, 2),
        }
        self.record("e2e", target.subject, f"{tasks}-tasks", run, metrics,
                    [target.command_line(), result["command"]])

    def waiting_capacity(self):
        for run in range(1, self.options.runs + 1):
            for backend in self.backends():
                self.attempt("waiting", f"conveyor/{backend}",
                             lambda: self.one_waiting_capacity(backend, run))

    def one_waiting_capacity(self, backend, run):
        """Fill the queue through `conveyor api`, then time one worker draining it."""
        tasks = self.options.waiting_tasks
        database = self.workspace.database(backend)
        api = self.start_conveyor("api", database)
        try:
            result, _ = self.submit_until(Target(f"conveyor/{backend}", api, database), tasks,
                                          self.options.submit_timeout)
        finally:
            self.stop(api)
        worker = None
        try:
            worker = services.ConveyorProcess(
                self.workspace, self.options.binary, "worker", database,
                ["--concurrency", str(tasks), "--simulated-delay", self.options.waiting_delay])
            peak = {"hwm": 0}

            def watch_memory():
                worker.child.check_running()
                peak["hwm"] = max(peak["hwm"], processes.status_kib(worker.pid, "VmHWM") or 0)

            counts = self.wait_terminal(database, self.options.drain_timeout, watch_memory)
            watch_memory()
            observed = time.monotonic() - worker.child.started_monotonic
            _, last_finished = database.span_ms()
            drain_s = last_finished / 1000.0 - worker.child.started_wall
            metrics = {"tasks": counts.total, "failed": counts.failed,
                       "drain_s": round(drain_s, 3), "observed_s": round(observed, 3),
                       "peak_rss_bytes": peak["hwm"] * KIB}
            self.record("waiting", f"conveyor/{backend}", f"{tasks}-tasks", run, metrics,
                        [shlex.join(map(str, api.argv)), result["command"],
                         shlex.join(map(str, worker.argv))])
        finally:
            self.stop(worker)
            self.workspace.drop(database)

    def cost_growth(self):
        for backend in self.backends():
            self.attempt("cost-growth", backend, lambda: self.backend_cost_growth(backend))

    def backend_cost_growth(self, backend):
        """Grow one database through the sizes in order and measure at each.

        The first pass at a size fills the table to it. The later passes find
        it full and only time the calls, so each size gets as many runs as
        the other figures. The fill's figures come from the first pass.
        """
        database = self.workspace.database(backend)
        try:
            for size in sorted(self.options.cost_sizes):
                argv = [str(self.options.store_bench), "cost-growth", "--database", database.url,
                        "--tasks", str(size), "--samples", str(self.options.cost_samples)]
                for run in range(1, self.options.runs + 1):
                    report = self.run_tool(argv, self.workspace.next_label("cost-growth"),
                                           STORE_BENCH_TIMEOUT_S)
                    metrics = flatten(report)
                    if run > 1:
                        metrics = {name: value for name, value in metrics.items()
                                   if not name.startswith("fill.")}
                    self.record("cost-growth", backend, f"{size}-tasks", run, metrics,
                                [shlex.join(map(str, argv))])
        finally:
            self.workspace.drop(database)


def flatten(value, prefix=""):
    """Return the numeric leaves of a JSON object as {"a.b.c": number}."""
    flat = {}
    if isinstance(value, dict):
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}{key}."))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        flat[prefix[:-1]] = value
    return flat
