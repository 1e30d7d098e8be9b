"""PostgreSQL going away and coming back while conveyor processes keep running.

While the database is down, the API returns 503 unavailable with
Retry-After and the workers wait. Both recover by themselves when it
returns, without a restart of any conveyor process.
"""

import email.utils
import json
import subprocess
import threading
import time

import pytest

from conftest import (
    BINARY,
    get_task,
    hermetic_environment,
    list_all,
    submit,
    wait_for_status,
    wait_until,
)
from problems import assert_problem

pytestmark = pytest.mark.postgres_only(reason="stops and starts the PostgreSQL server")

# A request made while the database is down must get a response at once, not hang.
OUTAGE_REQUEST_TIMEOUT_S = 15.0
RECOVERY_TIMEOUT_S = 30.0


@pytest.fixture
def cluster(postgres_cluster):
    """The session's cluster, started again at teardown if the test left it stopped."""
    yield postgres_cluster
    if not postgres_cluster.is_running():
        postgres_cluster.start()


def assert_unavailable(response):
    """Require 503 unavailable with a Retry-After of delay-seconds or an HTTP date."""
    body = assert_problem(response, 503, "unavailable")
    retry_after = response[1].get("retry-after")
    assert retry_after is not None, f"503 without Retry-After: {body!r}"
    if not retry_after.strip().isdigit():
        assert email.utils.parsedate_to_datetime(retry_after) is not None, retry_after
    return body


def wait_ready(server):
    wait_until(
        lambda: server.request("GET", "/readyz", timeout=OUTAGE_REQUEST_TIMEOUT_S)[0] == 200,
        RECOVERY_TIMEOUT_S,
        f"/readyz did not return to 200 after the database came back; log:\n{server.log_tail()}",
        interval=0.2,
    )


def submit_when_ready(server, body, headers=None):
    """Submit until the response is 202, accepting only 503 unavailable before it."""

    def attempt():
        response = server.request(
            "POST", "/v1/tasks", body, headers, timeout=OUTAGE_REQUEST_TIMEOUT_S
        )
        if response[0] == 202:
            return response
        assert_unavailable(response)
        return None

    return wait_until(attempt, RECOVERY_TIMEOUT_S, "submissions did not recover", interval=0.2)


def completed_lines(process):
    """Return the task ids of the "task completed" lines in a process log."""
    task_ids = []
    for line in process.log_lines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("msg") == "task completed":
            task_ids.append(record.get("task_id"))
    return task_ids


def test_submit_during_outage_is_unavailable(start_server, cluster):
    server = start_server("api")
    submit(server, "the pool has a connection")
    cluster.stop()
    for index in range(5):
        response = server.request(
            "POST", "/v1/tasks", {"text": f"refused {index}"}, timeout=OUTAGE_REQUEST_TIMEOUT_S
        )
        assert_unavailable(response)


def test_reads_during_outage_are_unavailable(start_server, cluster):
    server = start_server("api")
    task = submit(server, "stored before the outage")
    cluster.stop()
    for path in (f"/v1/tasks/{task['task_id']}", "/v1/tasks", "/v1/tasks?status=PENDING"):
        assert_unavailable(server.request("GET", path, timeout=OUTAGE_REQUEST_TIMEOUT_S))


def test_cancel_and_retry_during_outage_are_unavailable(start_server, cluster):
    server = start_server("api")
    task = submit(server, "never claimed")
    cluster.stop()
    for action in ("cancel", "retry"):
        response = server.request(
            "POST", f"/v1/tasks/{task['task_id']}/{action}", timeout=OUTAGE_REQUEST_TIMEOUT_S
        )
        assert_unavailable(response)


def test_readyz_fails_and_healthz_holds(start_server, cluster):
    server = start_server("api")
    assert server.request("GET", "/readyz")[0] == 200
    cluster.stop()
    status, _, _ = server.request("GET", "/readyz", timeout=OUTAGE_REQUEST_TIMEOUT_S)
    assert status == 503
    status, _, _ = server.request("GET", "/healthz", timeout=OUTAGE_REQUEST_TIMEOUT_S)
    assert status == 200
    cluster.start()
    wait_ready(server)


def test_api_recovers_after_restart(start_server, cluster):
    server = start_server("serve", "--simulated-delay", "0")
    before = submit(server, "The cat and the hat.")
    wait_for_status(server, before["task_id"], "COMPLETED")
    cluster.restart(down_for=1.0)

    status, _, task = submit_when_ready(server, {"text": "Straße STRASSE straße"})
    assert status == 202, task
    done = wait_for_status(server, task["task_id"], "COMPLETED", timeout=RECOVERY_TIMEOUT_S)
    assert done["result"]["top_words"] == [{"word": "strasse", "count": 3}]
    kept = get_task(server, before["task_id"])
    assert kept["status"] == "COMPLETED"
    assert kept["result"]["word_count"] == 5
    assert server.proc.poll() is None, "the server exited during the outage"


def test_worker_finishes_tasks_across_outage(start_server, cluster):
    api = start_server("api", "--enable-fault-injection")
    worker = start_server(
        "worker", "--simulated-delay", "0", "--enable-fault-injection", "--lease", "5s",
        database=api.database,
    )
    tasks = [submit(api, {"text": f"across outage {index}", "params": {"delay_ms": 1500}})
             for index in range(10)]
    for task in tasks:
        wait_for_status(api, task["task_id"], {"PROCESSING", "COMPLETED"}, timeout=30)

    # The attempts end while the database is down; their outcomes must be
    # recorded once it is back.
    cluster.restart(down_for=2.0)
    wait_ready(api)
    for task in tasks:
        done = wait_for_status(api, task["task_id"], {"COMPLETED", "FAILED"}, timeout=60)
        assert done["status"] == "COMPLETED", f"{done!r}; worker log:\n{worker.log_tail()}"
        assert done["result"]["word_count"] == 3

    completions = completed_lines(worker)
    for task in tasks:
        assert completions.count(task["task_id"]) == 1, f"worker log:\n{worker.log_tail()}"
    assert worker.proc.poll() is None, f"the worker exited; log:\n{worker.log_tail()}"
    assert api.proc.poll() is None, f"the api exited; log:\n{api.log_tail()}"


def test_worker_claims_tasks_submitted_after_outage(start_server, cluster):
    api = start_server("api")
    worker = start_server("worker", "--simulated-delay", "0", database=api.database)
    first = submit(api, "first")
    wait_for_status(api, first["task_id"], "COMPLETED", timeout=30)
    cluster.restart(down_for=2.0)

    _, _, task = submit_when_ready(api, {"text": "after the outage"})
    done = wait_for_status(api, task["task_id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["status"] == "COMPLETED", f"{done!r}; worker log:\n{worker.log_tail()}"
    assert done["attempts"] == 1
    assert worker.proc.poll() is None, f"the worker exited; log:\n{worker.log_tail()}"


def test_idempotency_key_refused_during_outage_creates_once(start_server, cluster):
    server = start_server("api")
    headers = {"Idempotency-Key": "outage-key"}
    body = {"text": "exactly once"}
    cluster.stop()
    assert_unavailable(
        server.request("POST", "/v1/tasks", body, headers, timeout=OUTAGE_REQUEST_TIMEOUT_S)
    )
    cluster.start()

    _, _, created = submit_when_ready(server, body, headers)
    status, response_headers, replay = server.request("POST", "/v1/tasks", body, headers)
    assert status == 202, replay
    assert replay["task_id"] == created["task_id"]
    assert response_headers.get("idempotent-replayed") == "true"
    assert [item["task_id"] for item in list_all(server)] == [created["task_id"]]


def test_postmaster_crash_keeps_acknowledged_tasks(start_server, cluster):
    api = start_server("api")
    acknowledged = [submit(api, f"before the crash {index}")["task_id"] for index in range(50)]
    cluster.kill()
    wait_ready(api)

    listed = {item["task_id"] for item in list_all(api, "limit=100")}
    missing = set(acknowledged) - listed
    assert not missing, f"{len(missing)} of 50 acknowledged tasks were lost in the crash"
    start_server("worker", "--simulated-delay", "0", database=api.database)
    for task_id in acknowledged:
        done = wait_for_status(api, task_id, {"COMPLETED", "FAILED"}, timeout=60)
        assert done["status"] == "COMPLETED", done
    assert api.proc.poll() is None, f"the api exited; log:\n{api.log_tail()}"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:hunter2-secret@127.0.0.1:1/conveyor?bogus_option=1",
        "postgresql://postgres:hunter2-secret@127.0.0.1:1/conveyor?sslmode=%ZZ",
    ],
    ids=["unknown-parameter", "bad-percent-escape"],
)
def test_invalid_url_log_hides_password(url):
    completed = subprocess.run(
        [BINARY, "migrate", "--database", url, "--log-format", "json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=hermetic_environment({}),
        timeout=60,
    )
    output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
    assert completed.returncode != 0, output
    assert "hunter2-secret" not in output, output


def test_unreachable_database_log_hides_password(start_server):
    # Nothing listens on port 1 of the loopback address, so the process
    # logs retries while it waits for the database at start.
    url = "postgresql://postgres:hunter2-secret@127.0.0.1:1/conveyor"
    process = start_server("migrate", database=url)
    wait_until(
        lambda: len(process.log_lines()) >= 2 or process.proc.poll() is not None,
        10,
        "migrate logged nothing about the unreachable database",
    )
    output = "\n".join(process.log_lines())
    assert "hunter2-secret" not in output, output


def test_migrate_log_hides_password(new_database):
    # Trust authentication ignores the password, so the migration succeeds.
    database = new_database()
    separator = "&" if "?" in database else "?"
    completed = subprocess.run(
        [BINARY, "migrate", "--database", f"{database}{separator}password=hunter2-secret",
         "--log-format", "json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=hermetic_environment({}),
        timeout=60,
    )
    output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
    assert completed.returncode == 0, output
    assert "hunter2-secret" not in output, output


def test_worker_started_during_outage_waits(start_server, cluster):
    api = start_server("api")
    cluster.stop()
    worker = start_server("worker", "--simulated-delay", "0", database=api.database)
    time.sleep(2.0)
    assert worker.proc.poll() is None, (
        f"the worker exited while the database was down; log:\n{worker.log_tail()}"
    )
    cluster.start()

    _, _, task = submit_when_ready(api, {"text": "claimed by a late worker"})
    done = wait_for_status(api, task["task_id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["status"] == "COMPLETED", f"{done!r}; worker log:\n{worker.log_tail()}"


def test_api_started_during_outage_waits(start_server, cluster):
    first = start_server("api")
    cluster.stop()
    # The second api starts while the database is down and must listen once
    # the database is back two seconds later.
    restart = threading.Timer(2.0, cluster.start)
    restart.start()
    try:
        second = start_server("api", database=first.database)
    finally:
        restart.join()
    wait_ready(second)
    assert submit(second, "served by a late api")["status"] == "PENDING"
