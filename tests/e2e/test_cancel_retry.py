"""Cancel and retry (redrive) in every task state."""

import pytest

from conftest import get_task, submit, wait_for_status
from problems import assert_problem, parse_timestamp


@pytest.fixture
def api_only(start_server):
    """An api process with no workers, so submitted tasks stay PENDING."""
    return start_server("api", "--simulated-delay", "0", "--enable-fault-injection")


def cancel(server, task_id):
    return server.request("POST", f"/v1/tasks/{task_id}/cancel")


def retry(server, task_id):
    return server.request("POST", f"/v1/tasks/{task_id}/retry")


def test_cancel_pending_task(api_only):
    task = submit(api_only, "pending")
    status, _, body = cancel(api_only, task["task_id"])
    assert status == 200, body
    assert body["status"] == "CANCELLED"
    assert body["finished_at"] is not None
    assert body["result"] is None
    assert body["attempts"] == 0
    assert get_task(api_only, task["task_id"])["status"] == "CANCELLED"


def test_cancelled_pending_task_never_runs(start_server, api_only):
    cancelled = submit(api_only, "never run")
    other = submit(api_only, "run")
    assert cancel(api_only, cancelled["task_id"])[0] == 200
    start_server("worker", "--simulated-delay", "0", database=api_only.database)
    wait_for_status(api_only, other["task_id"], "COMPLETED", timeout=30)
    after = get_task(api_only, cancelled["task_id"])
    assert after["status"] == "CANCELLED"
    assert after["attempts"] == 0


def test_cancel_processing_task_stops_it(server):
    task = submit(server, {"text": "slow", "params": {"delay_ms": 1500}})
    wait_for_status(server, task["task_id"], "PROCESSING")
    status, _, body = cancel(server, task["task_id"])
    assert status == 200, body
    assert body["status"] == "CANCELLED"
    # A later task with the same delay finishing proves the cancelled one's
    # delay has passed too; its result must have been discarded.
    sentinel = submit(server, {"text": "sentinel", "params": {"delay_ms": 1500}})
    wait_for_status(server, sentinel["task_id"], "COMPLETED", timeout=30)
    after = get_task(server, task["task_id"])
    assert after["status"] == "CANCELLED"
    assert after["result"] is None
    assert after["attempts"] == 1
    assert after["finished_at"] == body["finished_at"]


def test_cancel_frees_worker_slot(start_server):
    server = start_server(
        "serve", "--simulated-delay", "0", "--enable-fault-injection", "--concurrency", "1"
    )
    slow = submit(server, {"text": "slow", "params": {"delay_ms": 600000}})
    wait_for_status(server, slow["task_id"], "PROCESSING")
    assert cancel(server, slow["task_id"])[0] == 200
    quick = submit(server, "quick")
    wait_for_status(server, quick["task_id"], "COMPLETED", timeout=20)


def test_cancel_cancelled_is_unchanged(api_only):
    task = submit(api_only, "twice")
    _, _, first = cancel(api_only, task["task_id"])
    status, _, second = cancel(api_only, task["task_id"])
    assert status == 200, second
    assert second == first


def test_cancel_completed_is_409(server):
    task = submit(server, "done")
    done = wait_for_status(server, task["task_id"], "COMPLETED")
    assert_problem(cancel(server, task["task_id"]), 409, "task_not_cancellable")
    assert get_task(server, task["task_id"]) == done


def test_cancel_failed_is_409(server):
    task = submit(server, {"text": "bad", "params": {"fail_permanently": True}})
    failed = wait_for_status(server, task["task_id"], "FAILED")
    assert_problem(cancel(server, task["task_id"]), 409, "task_not_cancellable")
    assert get_task(server, task["task_id"]) == failed


def test_retry_failed_resets_attempts_and_error(server):
    task = submit(server, {"text": "bad", "params": {"fail_permanently": True}})
    failed = wait_for_status(server, task["task_id"], "FAILED")
    assert failed["attempts"] == 1
    assert failed["error"]["code"] == "invalid_input"
    status, _, body = retry(server, task["task_id"])
    assert status == 200, body
    assert body["status"] == "PENDING"
    assert body["attempts"] == 0
    assert body["error"] is None
    assert body["result"] is None
    # The redriven task runs again and fails the same way, once.
    again = wait_for_status(server, task["task_id"], "FAILED")
    assert again["attempts"] == 1
    assert again["error"]["code"] == "invalid_input"
    assert parse_timestamp(again["started_at"]) > parse_timestamp(failed["started_at"])


def test_retry_cancelled_runs_to_completion(server):
    task = submit(server, {"text": "come back", "params": {"delay_ms": 1000}})
    wait_for_status(server, task["task_id"], "PROCESSING")
    assert cancel(server, task["task_id"])[0] == 200
    status, _, body = retry(server, task["task_id"])
    assert status == 200, body
    assert body["status"] == "PENDING"
    assert body["attempts"] == 0
    assert body["error"] is None
    done = wait_for_status(server, task["task_id"], "COMPLETED", timeout=30)
    assert done["attempts"] == 1
    assert done["result"]["word_count"] == 2


def test_retry_cancelled_pending_task(api_only):
    task = submit(api_only, "cancelled early")
    cancel(api_only, task["task_id"])
    status, _, body = retry(api_only, task["task_id"])
    assert status == 200, body
    assert body["status"] == "PENDING"
    assert body["attempts"] == 0


def test_retry_pending_is_409(api_only):
    task = submit(api_only, "pending")
    assert_problem(retry(api_only, task["task_id"]), 409, "task_not_retryable")
    assert get_task(api_only, task["task_id"])["status"] == "PENDING"


def test_retry_processing_is_409(server):
    task = submit(server, {"text": "slow", "params": {"delay_ms": 600000}})
    wait_for_status(server, task["task_id"], "PROCESSING")
    assert_problem(retry(server, task["task_id"]), 409, "task_not_retryable")
    assert get_task(server, task["task_id"])["status"] == "PROCESSING"


def test_retry_completed_is_409(server):
    task = submit(server, "done")
    done = wait_for_status(server, task["task_id"], "COMPLETED")
    assert_problem(retry(server, task["task_id"]), 409, "task_not_retryable")
    assert get_task(server, task["task_id"]) == done


def test_retried_task_is_listed_as_pending(api_only):
    task = submit(api_only, "listed")
    cancel(api_only, task["task_id"])
    retry(api_only, task["task_id"])
    status, _, page = api_only.request("GET", "/v1/tasks?status=PENDING")
    assert status == 200
    assert [item["task_id"] for item in page["items"]] == [task["task_id"]]
    status, _, page = api_only.request("GET", "/v1/tasks?status=CANCELLED")
    assert page["items"] == []
