"""GET /v1/tasks/{id}?wait=SECONDS: early return, time-outs and load."""

import concurrent.futures
import http.client
import json
import threading
import time

import pytest

from conftest import submit, wait_for_status
from problems import assert_problem


@pytest.fixture
def api_only(start_server):
    """An api process with no workers, so submitted tasks stay PENDING."""
    return start_server("api", "--simulated-delay", "0", "--enable-fault-injection")


def timed_get(server, path, timeout=90):
    started = time.monotonic()
    response = server.request("GET", path, timeout=timeout)
    return response, time.monotonic() - started


def test_wait_returns_when_task_finishes(server):
    task = submit(server, {"text": "finish soon", "params": {"delay_ms": 1000}})
    (status, _, body), elapsed = timed_get(server, f"/v1/tasks/{task['task_id']}?wait=30")
    assert status == 200, body
    assert body["status"] == "COMPLETED"
    assert body["result"] is not None
    assert elapsed < 10, f"long poll took {elapsed:.1f}s for a 1s task"


def test_wait_returns_task_as_it_stands_at_timeout(api_only):
    task = submit(api_only, "never runs")
    (status, headers, body), elapsed = timed_get(api_only, f"/v1/tasks/{task['task_id']}?wait=2")
    assert status == 200, body
    assert body["status"] == "PENDING"
    assert body["task_id"] == task["task_id"]
    assert elapsed >= 1.9, f"long poll answered after {elapsed:.2f}s of 2s"
    assert elapsed < 10, f"long poll answered after {elapsed:.2f}s of 2s"
    assert headers.get("retry-after") is not None


def test_wait_zero_answers_at_once(api_only):
    task = submit(api_only, "no wait")
    (status, _, body), elapsed = timed_get(api_only, f"/v1/tasks/{task['task_id']}?wait=0")
    assert status == 200, body
    assert body["status"] == "PENDING"
    assert elapsed < 1.0, f"wait=0 took {elapsed:.2f}s"


def test_wait_on_terminal_task_answers_at_once(server):
    task = submit(server, "done")
    wait_for_status(server, task["task_id"], "COMPLETED")
    (status, _, body), elapsed = timed_get(server, f"/v1/tasks/{task['task_id']}?wait=60")
    assert status == 200, body
    assert body["status"] == "COMPLETED"
    assert elapsed < 1.0, f"long poll on a finished task took {elapsed:.2f}s"


def test_wait_returns_on_cancel(api_only):
    task = submit(api_only, "to be cancelled")
    result = {}

    def poll():
        result["response"], result["elapsed"] = timed_get(api_only, f"/v1/tasks/{task['task_id']}?wait=30")

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        status, _, body = api_only.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
        assert status == 200, body
    finally:
        poller.join(timeout=60)
    status, _, body = result["response"]
    assert status == 200
    assert body["status"] == "CANCELLED"
    assert result["elapsed"] < 10, f"long poll returned {result['elapsed']:.1f}s after start"


@pytest.mark.parametrize("wait", ["61", "-1", "1.5x", "sixty"])
def test_wait_out_of_range_is_400(api_only, wait):
    task = submit(api_only, "bad wait")
    response = api_only.request("GET", f"/v1/tasks/{task['task_id']}?wait={wait}")
    assert_problem(response, 400, "invalid_parameter")


def test_wait_bounds_are_accepted(api_only):
    task = submit(api_only, "edge")
    status, _, body = api_only.request("GET", f"/v1/tasks/{task['task_id']}?wait=0")
    assert status == 200, body
    cancelled = api_only.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
    assert cancelled[0] == 200
    status, _, body = api_only.request("GET", f"/v1/tasks/{task['task_id']}?wait=60")
    assert status == 200, body


def test_wait_sees_completion_by_other_process(start_server):
    api = start_server("api", "--enable-fault-injection")
    start_server("worker", "--simulated-delay", "0", "--enable-fault-injection", database=api.database)
    task = submit(api, {"text": "cross process", "params": {"delay_ms": 500}})
    (status, _, body), elapsed = timed_get(api, f"/v1/tasks/{task['task_id']}?wait=30")
    assert status == 200, body
    assert body["status"] == "COMPLETED"
    assert elapsed < 15, f"long poll took {elapsed:.1f}s to see another process finish"


def test_open_long_polls_do_not_stall_server(api_only):
    count = 50
    tasks = [submit(api_only, f"held {index}") for index in range(count)]
    sent = threading.Semaphore(0)

    def hold(task):
        connection = http.client.HTTPConnection("127.0.0.1", api_only.port, timeout=90)
        try:
            connection.request("GET", f"/v1/tasks/{task['task_id']}?wait=30")
            sent.release()
            started = time.monotonic()
            response = connection.getresponse()
            body = json.loads(response.read())
            return response.status, body, time.monotonic() - started
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(hold, task) for task in tasks]
        for _ in range(count):
            assert sent.acquire(timeout=30), "long polls were not sent within 30s"
        # Give the server a moment to have read the held requests, bounded by
        # what the checks below would tolerate anyway.
        time.sleep(0.2)

        started = time.monotonic()
        status, _, _ = api_only.request("GET", "/healthz", timeout=10)
        healthz_seconds = time.monotonic() - started
        assert status == 200
        assert healthz_seconds < 1.0, f"/healthz took {healthz_seconds:.2f}s during {count} long polls"

        started = time.monotonic()
        extra = submit(api_only, "during long polls")
        status, _, _ = api_only.request("GET", f"/v1/tasks/{extra['task_id']}")
        assert status == 200
        assert time.monotonic() - started < 2.0

        for task in tasks:
            status, _, body = api_only.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
            assert status == 200, body
        results = [future.result(timeout=60) for future in futures]

    for status, body, elapsed in results:
        assert status == 200
        assert body["status"] == "CANCELLED"
        assert elapsed < 20, f"a long poll returned {elapsed:.1f}s after its request, after cancel"
