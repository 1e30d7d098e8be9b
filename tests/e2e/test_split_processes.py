"""Separate api and worker processes sharing one database."""

import concurrent.futures
import subprocess
import threading
import time

from conftest import BINARY, hermetic_environment, list_all, submit, wait_until


def submit_many(server, count, make_body):
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda index: submit(server, make_body(index)), range(count)))


def test_api_and_two_workers_complete_each_task_once(start_server):
    api = start_server("api", "--simulated-delay", "0..20ms")
    workers = [
        start_server("worker", "--simulated-delay", "0..20ms", database=api.database) for _ in range(2)
    ]
    tasks = submit_many(api, 200, lambda index: f"split task number {index}")

    def all_done():
        items = list_all(api, "limit=100")
        return items if all(item["status"] == "COMPLETED" for item in items) else None

    items = wait_until(all_done, 90, "200 tasks did not all complete")
    assert {item["task_id"] for item in items} == {task["task_id"] for task in tasks}
    assert len(items) == 200
    for item in items:
        assert item["attempts"] == 1, item
    for worker in workers:
        assert worker.proc.poll() is None, f"a worker exited early; log:\n{worker.log_tail()}"

    status, _, task = api.request("GET", f"/v1/tasks/{tasks[0]['task_id']}")
    assert status == 200
    assert task["result"]["word_count"] == 4


def test_api_alone_leaves_tasks_pending(start_server):
    api = start_server("api", "--simulated-delay", "0")
    task = submit(api, "no worker")
    status, _, body = api.request("GET", f"/v1/tasks/{task['task_id']}?wait=1")
    assert status == 200
    assert body["status"] == "PENDING"
    assert body["attempts"] == 0


def test_worker_started_later_drains_queue(start_server):
    api = start_server("api", "--simulated-delay", "0")
    tasks = submit_many(api, 30, lambda index: f"queued {index}")
    start_server("worker", "--simulated-delay", "0", database=api.database)

    def all_done():
        return all(item["status"] == "COMPLETED" for item in list_all(api, "limit=100"))

    wait_until(all_done, 60, "the worker did not drain 30 queued tasks")
    assert len(list_all(api)) == len(tasks)


def test_two_api_processes_share_tasks(start_server):
    first = start_server("api", "--simulated-delay", "0")
    second = start_server("api", "--simulated-delay", "0", database=first.database)
    first_task = submit(first, "via first")
    second_task = submit(second, "via second")
    for api in (first, second):
        listed = {item["task_id"] for item in list_all(api)}
        assert listed == {first_task["task_id"], second_task["task_id"]}


def test_idempotency_spans_api_processes(start_server):
    first = start_server("api", "--simulated-delay", "0")
    second = start_server("api", "--simulated-delay", "0", database=first.database)
    headers = {"Idempotency-Key": "shared-key"}
    _, _, original = first.request("POST", "/v1/tasks", {"text": "once"}, headers)
    status, response_headers, replay = second.request("POST", "/v1/tasks", {"text": "once"}, headers)
    assert status == 202, replay
    assert replay["task_id"] == original["task_id"]
    assert response_headers.get("idempotent-replayed") == "true"


def test_concurrent_key_across_api_processes(start_server):
    first = start_server("api", "--simulated-delay", "0")
    second = start_server("api", "--simulated-delay", "0", database=first.database)
    count = 40
    barrier = threading.Barrier(count, timeout=30)
    headers = {"Idempotency-Key": "raced-across-processes"}

    def send(index):
        barrier.wait()
        api = first if index % 2 == 0 else second
        return api.request("POST", "/v1/tasks", {"text": "one of many"}, headers)

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        responses = list(pool.map(send, range(count)))

    failures = [(status, body) for status, _, body in responses if status != 202]
    assert not failures, f"{len(failures)} requests were not accepted: {failures[:3]!r}"
    ids = {body["task_id"] for _, _, body in responses}
    assert len(ids) == 1, f"{len(ids)} distinct task ids"
    originals = [headers.get("idempotent-replayed") != "true" for _, headers, _ in responses]
    assert originals.count(True) == 1, f"{originals.count(True)} responses were not replays"
    assert [item["task_id"] for item in list_all(second)] == list(ids)


def test_cancel_on_api_stops_task_on_worker(start_server):
    api = start_server("api", "--enable-fault-injection")
    start_server("worker", "--simulated-delay", "0", "--enable-fault-injection", database=api.database)
    task = submit(api, {"text": "slow", "params": {"delay_ms": 1500}})
    wait_until(
        lambda: api.request("GET", f"/v1/tasks/{task['task_id']}")[2]["status"] == "PROCESSING",
        30,
        "the worker did not claim the task",
    )
    status, _, body = api.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
    assert status == 200, body
    sentinel = submit(api, {"text": "sentinel", "params": {"delay_ms": 1500}})
    wait_until(
        lambda: api.request("GET", f"/v1/tasks/{sentinel['task_id']}")[2]["status"] == "COMPLETED",
        30,
        "the sentinel task did not complete",
    )
    status, _, after = api.request("GET", f"/v1/tasks/{task['task_id']}")
    assert after["status"] == "CANCELLED"
    assert after["result"] is None


def test_migrate_then_serve(start_server, new_database):
    database = new_database()
    migrate = subprocess.run(
        [BINARY, "migrate", "--database", database, "--log-format", "json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=hermetic_environment({}),
        timeout=60,
    )
    assert migrate.returncode == 0, migrate.stderr.decode(errors="replace")
    again = subprocess.run(
        [BINARY, "migrate", "--database", database, "--log-format", "json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=hermetic_environment({}),
        timeout=60,
    )
    assert again.returncode == 0, again.stderr.decode(errors="replace")
    server = start_server("serve", "--simulated-delay", "0", database=database)
    task = submit(server, "after migrate")
    started = time.monotonic()
    while time.monotonic() - started < 30:
        status, _, body = server.request("GET", f"/v1/tasks/{task['task_id']}?wait=5")
        if body["status"] == "COMPLETED":
            break
    assert body["status"] == "COMPLETED", body
