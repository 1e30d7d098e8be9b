"""Retries with back-off and dead-lettering, driven by fault injection."""

import datetime
import time

from conftest import get_task, list_all, submit, wait_for_status
from problems import parse_timestamp


def start_fast_retries(start_server, *extra):
    return start_server(
        "serve", "--simulated-delay", "0", "--enable-fault-injection",
        "--retry-base", "50ms", "--retry-cap", "200ms", *extra,
    )


def test_transient_failures_then_success(start_server):
    server = start_fast_retries(start_server)
    task = submit(server, {"text": "flaky", "params": {"fail_attempts": 2}, "max_attempts": 3})
    done = wait_for_status(server, task["task_id"], {"COMPLETED", "FAILED"}, timeout=30)
    assert done["status"] == "COMPLETED", done
    assert done["attempts"] == 3
    assert done["result"]["word_count"] == 1
    assert done["error"] is None
    assert done["next_attempt_at"] is None


def test_attempts_used_up_is_failed(start_server):
    server = start_fast_retries(start_server)
    task = submit(server, {"text": "broken", "params": {"fail_attempts": 5}, "max_attempts": 2})
    failed = wait_for_status(server, task["task_id"], {"COMPLETED", "FAILED"}, timeout=30)
    assert failed["status"] == "FAILED", failed
    assert failed["attempts"] == 2
    assert failed["error"]["code"] == "injected_failure"
    assert isinstance(failed["error"]["message"], str)
    assert failed["result"] is None
    assert failed["finished_at"] is not None
    assert failed["next_attempt_at"] is None


def test_permanent_failure_is_not_retried(start_server):
    server = start_fast_retries(start_server)
    task = submit(server, {"text": "bad", "params": {"fail_permanently": True}, "max_attempts": 3})
    failed = wait_for_status(server, task["task_id"], {"COMPLETED", "FAILED"}, timeout=30)
    assert failed["status"] == "FAILED", failed
    assert failed["attempts"] == 1
    assert failed["error"]["code"] == "invalid_input"
    assert failed["result"] is None


def test_default_max_attempts_applies(start_server):
    server = start_fast_retries(start_server)
    task = submit(server, {"text": "default", "params": {"fail_attempts": 20}})
    failed = wait_for_status(server, task["task_id"], {"COMPLETED", "FAILED"}, timeout=30)
    assert failed["status"] == "FAILED", failed
    assert failed["attempts"] == 3


def poll_until_terminal(server, task_id, timeout):
    """Poll every 20ms; returns the final task and the snapshots seen waiting for a retry."""
    waiting = []
    deadline = time.monotonic() + timeout
    while True:
        current = get_task(server, task_id)
        if current["status"] == "PENDING" and current["attempts"] > 0:
            waiting.append(current)
        if current["status"] in ("COMPLETED", "FAILED") or time.monotonic() >= deadline:
            return current, waiting
        time.sleep(0.02)


def test_retry_wait_shows_error_and_next_attempt(start_server):
    base = datetime.timedelta(seconds=1)
    slack = datetime.timedelta(milliseconds=50)
    server = start_server(
        "serve", "--simulated-delay", "0", "--enable-fault-injection", "--retry-base", "1s"
    )
    task = submit(server, {"text": "wait for me", "params": {"fail_attempts": 3}, "max_attempts": 4})

    final, waiting = poll_until_terminal(server, task["task_id"], timeout=60)
    assert final["status"] == "COMPLETED", final
    assert final["attempts"] == 4

    # Three back-offs drawn from [0, 1s], [0, 2s] and [0, 4s] are all shorter
    # than one 20ms poll with a chance below one in ten thousand (an estimate
    # that ignores the claim latency, which only widens the window).
    assert waiting, "never saw the task waiting for a retry"
    for snapshot in waiting:
        assert snapshot["error"] is not None, snapshot
        assert snapshot["error"]["code"] == "injected_failure"
        assert snapshot["next_attempt_at"] is not None, snapshot
        assert snapshot["result"] is None
        next_attempt = parse_timestamp(snapshot["next_attempt_at"])
        failed_at = parse_timestamp(snapshot["updated_at"])
        ceiling = base * (2 ** (snapshot["attempts"] - 1))
        assert next_attempt >= failed_at - slack, snapshot
        assert next_attempt <= failed_at + ceiling + slack, snapshot


def test_backoff_cap_bounds_wait(start_server):
    server = start_server(
        "serve", "--simulated-delay", "0", "--enable-fault-injection",
        "--retry-base", "1s", "--retry-cap", "100ms",
    )
    task = submit(server, {"text": "capped", "params": {"fail_attempts": 6}, "max_attempts": 7})
    started = time.monotonic()
    done = wait_for_status(server, task["task_id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["status"] == "COMPLETED", done
    assert done["attempts"] == 7
    # Uncapped back-offs could reach 63s in total; six capped ones stay
    # under 0.6s plus claim latency.
    assert time.monotonic() - started < 20


def test_task_timeout_fails_attempt(start_server):
    server = start_server(
        "serve", "--simulated-delay", "0", "--enable-fault-injection",
        "--task-timeout", "500ms", "--retry-base", "50ms",
    )
    task = submit(server, {"text": "too slow", "params": {"delay_ms": 60000}, "max_attempts": 2})
    failed = wait_for_status(server, task["task_id"], {"COMPLETED", "FAILED"}, timeout=30)
    assert failed["status"] == "FAILED", failed
    assert failed["error"]["code"] == "timeout"
    assert failed["attempts"] == 2


def test_dead_letters_are_listable(start_server):
    server = start_fast_retries(start_server)
    failed = [
        submit(server, {"text": f"dead {index}", "params": {"fail_attempts": 3}, "max_attempts": 1})
        for index in range(3)
    ]
    fine = submit(server, "alive")
    for task in failed:
        wait_for_status(server, task["task_id"], "FAILED", timeout=30)
    wait_for_status(server, fine["task_id"], "COMPLETED", timeout=30)
    listed = list_all(server, "status=FAILED")
    assert {item["task_id"] for item in listed} == {task["task_id"] for task in failed}
    for item in listed:
        assert item["error"]["code"] == "injected_failure"


def test_redrive_of_dead_letter_runs_again(start_server):
    server = start_fast_retries(start_server)
    task = submit(server, {"text": "redrive", "params": {"fail_attempts": 5}, "max_attempts": 2})
    failed = wait_for_status(server, task["task_id"], "FAILED", timeout=30)
    assert failed["attempts"] == 2
    status, _, body = server.request("POST", f"/v1/tasks/{task['task_id']}/retry")
    assert status == 200, body
    assert body["status"] == "PENDING"
    assert body["attempts"] == 0
    assert body["error"] is None
    assert body["next_attempt_at"] is None
    # Five injected failures cover the next two attempts whether they are
    # counted since the redrive or since submission, so the task is
    # dead-lettered again after two more attempts.
    again = wait_for_status(server, task["task_id"], "FAILED", timeout=30)
    assert again["attempts"] == 2
    assert again["error"]["code"] == "injected_failure"
    assert parse_timestamp(again["finished_at"]) > parse_timestamp(failed["finished_at"])
