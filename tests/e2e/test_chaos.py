"""Chaos on PostgreSQL: steady load, workers killed with SIGKILL, one database restart.

Two api and three worker processes share one PostgreSQL database. Client
threads submit a steady stream of tasks to both api processes, each
submission with its own Idempotency-Key and retried with that key after a
503 unavailable. Meanwhile a random worker is killed with SIGKILL every few
seconds and started again, and PostgreSQL is restarted once in the middle.
After the load every acknowledged task must reach the state its text and
fault-injection parameters call for, exactly once.

CONVEYOR_E2E_CHAOS_SEED fixes the random choices; the seed in use is printed.
"""

import collections
import concurrent.futures
import datetime
import http.client
import json
import os
import random
import threading
import time

import pytest

from conftest import list_all, wait_until
from problems import parse_timestamp

pytestmark = pytest.mark.postgres_only(reason="restarts the PostgreSQL server under load")

API_COUNT = 2
WORKER_COUNT = 3
CLIENT_THREADS = 4
TARGET_TASKS = 2400
SUBMIT_SECONDS = 75.0
KILL_INTERVAL_S = (3.0, 5.0)
OUTAGE_AT_S = SUBMIT_SECONDS / 2
OUTAGE_DOWN_S = 2.0
# One submission keeps being retried for this long before the client gives up.
SUBMISSION_GIVE_UP_S = 60.0
MAX_RETRY_AFTER_SLEEP_S = 2.0
REQUEST_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 240.0
WORKER_START_TIMEOUT_S = 20.0
# An attempt lost to a kill or to the outage started at most this long
# before it: a task waits at most 300 ms, and its outcome is written soon after.
DISRUPTION_LOOKBACK_S = 5.0

MAX_ATTEMPTS = 3
API_FLAGS = ("--enable-fault-injection",)
WORKER_FLAGS = (
    "--lease", "3s", "--simulated-delay", "50ms..300ms", "--enable-fault-injection",
    "--retry-base", "200ms", "--retry-cap", "2s",
)
# None of these is an English stop word, so each counts as a candidate.
VOCABULARY = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima",
)


class Submission:
    """One logical submission: its body, key, expected outcome and what the client saw."""

    def __init__(self, index, rng, seed):
        self.index = index
        self.key = f"chaos-{seed}-{index}"
        roll = rng.random()
        if roll < 0.8:
            self.kind = "normal"
            params = {}
        elif roll < 0.9:
            self.kind = "fail_attempts"
            params = {"fail_attempts": rng.choice((1, 2))}
        else:
            self.kind = "fail_permanently"
            params = {"fail_permanently": True}
        self.text, self.expected_result = make_text(index, rng)
        self.body = {"text": self.text, "params": params, "max_attempts": MAX_ATTEMPTS}
        self.task_id = None
        self.acknowledged_at = None
        self.replayed = False
        self.tries = 0
        self.unavailable = 0
        self.unexpected = []


def make_text(index, rng):
    """Return a text and its text.analyze result: two vocabulary words and one unique tag."""
    first, second = rng.sample(VOCABULARY, 2)
    counts = {first: rng.randint(1, 4), second: rng.randint(1, 3), f"tag{index:05d}": 1}
    tokens = [word for word, count in counts.items() for _ in range(count)]
    rng.shuffle(tokens)
    # Upper-case tokens fold to the same word.
    tokens = [token.upper() if rng.random() < 0.2 else token for token in tokens]
    text = " ".join(tokens) + "."
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    result = {
        "word_count": sum(counts.values()),
        "unique_words": len(counts),
        "top_words": [{"word": word, "count": count} for word, count in ranked[:5]],
    }
    return text, result


def parse_log(process):
    """Return the JSON records of a process log."""
    records = []
    for line in process.log_lines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class Chaos:
    """The processes, the load and the faults of one run, with the figures it reports."""

    def __init__(self, start_server, cluster, database, seed):
        self.start_server = start_server
        self.cluster = cluster
        self.database = database
        self.seed = seed
        self.rng = random.Random(seed)
        self.apis = [start_server("api", *API_FLAGS, database=database) for _ in range(API_COUNT)]
        self.workers = []
        self.all_workers = []
        self.killed = set()
        self.kill_times = []
        self.outage = None
        self.submissions = [Submission(index, self.rng, seed) for index in range(TARGET_TASKS)]
        self._next_index = 0
        self._index_lock = threading.Lock()
        self.unavailable_times = []
        self._unavailable_lock = threading.Lock()
        self.missing_retry_after = 0
        for _ in range(WORKER_COUNT):
            self.workers.append(self.start_worker())

    def start_worker(self):
        worker = self.start_server("worker", *WORKER_FLAGS, database=self.database)
        self.all_workers.append(worker)
        wait_until(
            lambda: worker.proc.poll() is not None
            or any(record.get("msg") == "worker pool started" for record in parse_log(worker)),
            WORKER_START_TIMEOUT_S,
            "a worker did not log that its pool started",
        )
        assert worker.proc.poll() is None, f"a worker exited at start; log:\n{worker.log_tail()}"
        return worker

    # --- load ---------------------------------------------------------------

    def run_client(self, started):
        rate = TARGET_TASKS / SUBMIT_SECONDS
        while True:
            with self._index_lock:
                index = self._next_index
                self._next_index += 1
            if index >= TARGET_TASKS:
                return
            pause = started + index / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.submit(self.submissions[index])

    def submit(self, submission):
        give_up = time.monotonic() + SUBMISSION_GIVE_UP_S
        api_index = submission.index % API_COUNT
        headers = {"Idempotency-Key": submission.key}
        while time.monotonic() < give_up:
            api = self.apis[api_index]
            # A retry goes to the other api process, so the key must work across them.
            api_index = (api_index + 1) % API_COUNT
            submission.tries += 1
            try:
                status, response_headers, body = api.request(
                    "POST", "/v1/tasks", submission.body, headers, timeout=REQUEST_TIMEOUT_S
                )
            except (OSError, http.client.HTTPException) as error:
                submission.unexpected.append(f"{type(error).__name__}: {error}")
                time.sleep(0.2)
                continue
            if status == 202:
                submission.task_id = body["task_id"]
                submission.acknowledged_at = time.time()
                submission.replayed = response_headers.get("idempotent-replayed") == "true"
                return
            code = body.get("code") if isinstance(body, dict) else None
            if status != 503 or code != "unavailable":
                submission.unexpected.append(f"{status} {body!r}")
                time.sleep(0.2)
                continue
            submission.unavailable += 1
            with self._unavailable_lock:
                self.unavailable_times.append(time.time())
            retry_after = response_headers.get("retry-after", "")
            if not retry_after.isdigit():
                with self._unavailable_lock:
                    self.missing_retry_after += 1
                retry_after = "1"
            time.sleep(min(float(retry_after), MAX_RETRY_AFTER_SLEEP_S) + random.random() * 0.1)

    # --- faults -------------------------------------------------------------

    def run_faults(self, started):
        """Kill a random worker every few seconds and restart PostgreSQL once, until the load ends."""
        next_kill = started + self.rng.uniform(*KILL_INTERVAL_S)
        outage_due = started + OUTAGE_AT_S
        while time.monotonic() < started + SUBMIT_SECONDS:
            now = time.monotonic()
            if self.outage is None and now >= outage_due:
                went_down = time.time()
                down_for = self.cluster.restart(down_for=OUTAGE_DOWN_S)
                self.outage = (went_down, went_down + down_for)
                next_kill = max(next_kill, time.monotonic() + 1.0)
            elif now >= next_kill:
                self.kill_random_worker()
                next_kill = time.monotonic() + self.rng.uniform(*KILL_INTERVAL_S)
            time.sleep(0.05)

    def kill_random_worker(self):
        slot = self.rng.randrange(WORKER_COUNT)
        victim = self.workers[slot]
        self.kill_times.append(time.time())
        victim.kill()
        self.killed.add(id(victim))
        self.workers[slot] = self.start_worker()

    # --- checks -------------------------------------------------------------

    def wait_drained(self):
        api = self.apis[0]

        def drained():
            return not list_all(api, "status=PENDING,PROCESSING&limit=100")

        wait_until(drained, DRAIN_TIMEOUT_S, "acknowledged tasks did not all become terminal", 1.0)

    def fetch_tasks(self, task_ids):
        def fetch(pair):
            index, task_id = pair
            status, _, task = self.apis[index % API_COUNT].request("GET", f"/v1/tasks/{task_id}")
            return task_id, status, task

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            fetched = pool.map(fetch, enumerate(task_ids))
            return {task_id: (status, task) for task_id, status, task in fetched}

    def attempt_starts(self):
        """Map (task_id, attempt) to the worker processes that logged starting it."""
        starts = collections.defaultdict(list)
        for worker in self.all_workers:
            for record in parse_log(worker):
                if record.get("msg") == "task started":
                    starts[(record.get("task_id"), int(record.get("attempt", 0)))].append(worker)
        return starts

    def completions(self):
        """Map task_id to the attempts of its "task completed" log lines, over every worker."""
        completed = collections.defaultdict(list)
        for worker in self.all_workers:
            for record in parse_log(worker):
                if record.get("msg") == "task completed":
                    completed[record.get("task_id")].append(int(record.get("attempt", 0)))
        return completed

    def lost_attempt_cause(self, task, starts):
        """Return "kill" or "outage" when that explains the loss of a task's last attempt, else None.

        A kill explains it when a killed worker started that attempt, or
        when no worker logged starting it and a kill followed its start
        closely (the claim landed just before the kill). The outage explains
        it when the attempt started shortly before or during the outage,
        because its lease could expire then.
        """
        starters = starts.get((task["task_id"], task["attempts"]), [])
        if any(id(worker) in self.killed for worker in starters):
            return "kill"
        if task["started_at"] is None:
            return None
        started_at = parse_timestamp(task["started_at"]).timestamp()
        if not starters and any(
            started_at <= killed_at <= started_at + DISRUPTION_LOOKBACK_S
            for killed_at in self.kill_times
        ):
            return "kill"
        if self.outage is not None and (
            self.outage[0] - DISRUPTION_LOOKBACK_S <= started_at <= self.outage[1]
        ):
            return "outage"
        return None


@pytest.fixture
def cluster(postgres_cluster):
    """The session's cluster, started again at teardown if the test left it stopped."""
    yield postgres_cluster
    if not postgres_cluster.is_running():
        postgres_cluster.start()


def test_chaos_loses_and_doubles_nothing(start_server, new_database, cluster):
    seed = int(os.environ.get("CONVEYOR_E2E_CHAOS_SEED", str(int(time.time()))))
    print(f"chaos seed {seed}")
    chaos = Chaos(start_server, cluster, new_database(), seed)

    started = time.monotonic()
    load_started = time.time()
    clients = [
        threading.Thread(target=chaos.run_client, args=(started,), daemon=True)
        for _ in range(CLIENT_THREADS)
    ]
    for client in clients:
        client.start()
    chaos.run_faults(started)
    for client in clients:
        client.join(SUBMISSION_GIVE_UP_S + REQUEST_TIMEOUT_S + 30)
    assert not any(client.is_alive() for client in clients), "a client thread did not finish"
    load_seconds = time.time() - load_started

    drain_started = time.monotonic()
    chaos.wait_drained()
    drain_seconds = time.monotonic() - drain_started

    submissions = chaos.submissions
    acknowledged = [item for item in submissions if item.task_id is not None]
    unexpected = [(item.key, item.unexpected) for item in submissions if item.unexpected]
    figures = {
        "seed": seed,
        "submissions": len(submissions),
        "acknowledged": len(acknowledged),
        "load_seconds": round(load_seconds, 1),
        "worker_kills": len(chaos.kill_times),
        "outage_seconds": round(chaos.outage[1] - chaos.outage[0], 2) if chaos.outage else None,
        "unavailable_answers": len(chaos.unavailable_times),
        "unavailable_window_seconds": (
            round(max(chaos.unavailable_times) - min(chaos.unavailable_times), 2)
            if chaos.unavailable_times else 0
        ),
        "replayed_acknowledgements": sum(item.replayed for item in acknowledged),
        "drain_seconds": round(drain_seconds, 1),
    }
    print("chaos figures " + json.dumps(figures))

    # The client side: every submission acknowledged, only 503 unavailable
    # on the way, and every 503 with Retry-After.
    assert chaos.outage is not None, "the database restart did not happen"
    assert not unexpected, f"{len(unexpected)} submissions saw other answers, e.g. {unexpected[:5]}"
    assert len(acknowledged) == len(submissions), (
        f"{len(submissions) - len(acknowledged)} submissions were never acknowledged"
    )
    assert chaos.missing_retry_after == 0, f"{chaos.missing_retry_after} 503 answers lacked Retry-After"

    # Nothing lost, nothing doubled: the database contains exactly the
    # acknowledged tasks, one per key.
    acknowledged_ids = [item.task_id for item in acknowledged]
    assert len(set(acknowledged_ids)) == len(acknowledged_ids), "two keys got the same task id"
    listed = [item["task_id"] for item in list_all(chaos.apis[1], "limit=100")]
    assert len(listed) == len(set(listed)), "a task appears twice in the list"
    lost = set(acknowledged_ids) - set(listed)
    extra = set(listed) - set(acknowledged_ids)
    assert not lost, f"{len(lost)} acknowledged tasks are missing, e.g. {sorted(lost)[:5]}"
    assert not extra, f"{len(extra)} tasks were never acknowledged, e.g. {sorted(extra)[:5]}"

    # Each task ended as its parameters call for.
    tasks = chaos.fetch_tasks(acknowledged_ids)
    starts = chaos.attempt_starts()
    wrong = []
    explained_losses = []
    for item in acknowledged:
        status, task = tasks[item.task_id]
        if status != 200:
            wrong.append((item.key, f"GET returned {status}: {task!r}"))
            continue
        error_code = (task.get("error") or {}).get("code")
        if task["status"] == "FAILED" and error_code == "worker_lost":
            cause = chaos.lost_attempt_cause(task, starts) if task["attempts"] == MAX_ATTEMPTS else None
            if cause is not None:
                explained_losses.append((item.task_id, item.kind, item.body["params"], cause))
            else:
                wrong.append((item.key, f"unexplained worker_lost: {task!r}"))
            continue
        if item.kind == "fail_permanently":
            if task["status"] != "FAILED" or error_code != "invalid_input":
                wrong.append((item.key, f"expected FAILED invalid_input: {task!r}"))
            continue
        if task["status"] != "COMPLETED":
            wrong.append((item.key, f"expected COMPLETED: {task!r}"))
        elif task["result"] != item.expected_result:
            wrong.append((item.key, f"text {item.text!r} expected {item.expected_result!r}: {task!r}"))
        elif item.kind == "fail_attempts" and task["attempts"] <= item.body["params"]["fail_attempts"]:
            wrong.append((item.key, f"completed before its injected failures ran out: {task!r}"))
    print(f"chaos tasks lost to a kill or the outage on their last attempt: {explained_losses}")
    attempts_used = collections.Counter(
        tasks[item.task_id][1].get("attempts") for item in acknowledged if tasks[item.task_id][0] == 200
    )
    print(f"chaos attempts per task: {dict(sorted(attempts_used.items()))}")
    assert not wrong, f"{len(wrong)} tasks ended wrongly, e.g. {wrong[:5]}"

    # Exactly once: at most one "task completed" line per task over every
    # worker's log, and a line only for a task that ended COMPLETED at that
    # attempt.
    completions = chaos.completions()
    doubled = {task_id: attempts for task_id, attempts in completions.items() if len(attempts) > 1}
    assert not doubled, f"{len(doubled)} tasks completed twice or more: {list(doubled.items())[:5]}"
    for task_id, attempts in completions.items():
        assert task_id in tasks, f"a worker completed unknown task {task_id}"
        status, task = tasks[task_id]
        assert task["status"] == "COMPLETED", f"logged as completed but ended {task!r}"
        assert task["attempts"] == attempts[0], f"completed at attempt {attempts[0]}: {task!r}"

    # No process other than the killed workers needed a restart.
    for api in chaos.apis:
        assert api.proc.poll() is None, f"an api process exited; log:\n{api.log_tail()}"
        assert api.request("GET", "/healthz")[0] == 200
    for worker in chaos.all_workers:
        if id(worker) not in chaos.killed:
            assert worker.proc.poll() is None, f"a worker exited; log:\n{worker.log_tail()}"
