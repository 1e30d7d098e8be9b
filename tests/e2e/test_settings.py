"""Settings that change how processes find work: --poll-only and --retention."""

import subprocess

from conftest import BINARY, hermetic_environment, submit, wait_for_status


def test_poll_only_completes_tasks(start_server):
    api = start_server("api", "--poll-only")
    start_server("worker", "--poll-only", "--simulated-delay", "0", database=api.database)

    task = submit(api, "poll only mode still finds the work")

    status, _, body = api.request("GET", f"/v1/tasks/{task['task_id']}?wait=20")
    assert status == 200
    assert body["status"] == "COMPLETED", body
    assert body["result"]["word_count"] == 7


def test_poll_only_long_poll_sees_finish_elsewhere(start_server):
    api = start_server("api", "--poll-only")
    start_server("worker", "--poll-only", "--simulated-delay", "300ms", database=api.database)

    task = submit(api, "finished by another process")

    status, _, body = api.request("GET", f"/v1/tasks/{task['task_id']}?wait=20")
    assert status == 200
    assert body["status"] == "COMPLETED", "the long poll must return once the worker finishes"


def test_retention_below_a_day_is_usage_error():
    completed = subprocess.run(
        [BINARY, "migrate", "--retention", "1h", "--database", "sqlite::memory:"],
        env=hermetic_environment(None),
        capture_output=True,
        timeout=30,
    )
    assert completed.returncode == 2
    assert b"--retention" in completed.stderr


def test_retention_is_accepted(start_server):
    server = start_server("serve", "--retention", "24h", "--simulated-delay", "0")
    task = submit(server, "kept for a day")
    assert wait_for_status(server, task["task_id"], ["COMPLETED"])["status"] == "COMPLETED"
