"""Crashes and shutdown: kill -9, restarts on the same database, and SIGTERM."""

import concurrent.futures
import http.client
import json
import signal
import threading
import time

from conftest import get_task, list_all, submit, wait_for_status, wait_until


def test_kill_while_processing_loses_nothing(start_server):
    # A 5s delay keeps all 20 tasks PROCESSING while the test confirms it.
    first = start_server("serve", "--simulated-delay", "5s", "--lease", "2s")
    tasks = [submit(first, f"crash survivor {index}") for index in range(20)]
    for task in tasks:
        wait_for_status(first, task["task_id"], "PROCESSING", timeout=30)
    first.kill()

    second = start_server(
        "serve", "--simulated-delay", "0", "--lease", "2s", "--retry-base", "100ms",
        database=first.database,
    )
    for task in tasks:
        done = wait_for_status(second, task["task_id"], "COMPLETED", timeout=60)
        assert done["attempts"] == 2, done
        assert done["result"]["word_count"] == 3
        assert done["error"] is None


def test_kill_after_burst_keeps_acknowledged_tasks(start_server):
    first = start_server("serve", "--simulated-delay", "0")
    acknowledged = []
    acknowledged_lock = threading.Lock()
    enough = threading.Event()
    total = 300

    def send(index):
        connection = http.client.HTTPConnection("127.0.0.1", first.port, timeout=30)
        try:
            body = f'{{"text": "burst {index}"}}'
            connection.request("POST", "/v1/tasks", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            if response.status == 202:
                with acknowledged_lock:
                    acknowledged.append(json.loads(payload)["task_id"])
                    if len(acknowledged) >= total * 2 // 3:
                        enough.set()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(send, index) for index in range(total)]
        assert enough.wait(60), "the burst was not acknowledged within 60s"
        first.kill()
        concurrent.futures.wait(futures, timeout=60)

    with acknowledged_lock:
        acked = list(acknowledged)
    assert len(acked) >= total * 2 // 3
    assert len(set(acked)) == len(acked)

    second = start_server("serve", "--simulated-delay", "0", database=first.database)
    listed = {item["task_id"] for item in list_all(second, "limit=100")}
    missing = set(acked) - listed
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged tasks were lost"
    for task_id in acked[:: max(1, len(acked) // 20)]:
        assert wait_for_status(second, task_id, "COMPLETED", timeout=60)


def test_worker_killed_every_attempt_ends_worker_lost(start_server):
    max_attempts = 2
    api = start_server("api", "--enable-fault-injection")
    worker_args = (
        "--simulated-delay", "0", "--enable-fault-injection", "--lease", "1s",
        "--retry-base", "100ms",
    )
    task = submit(
        api, {"text": "doomed", "params": {"delay_ms": 600000}, "max_attempts": max_attempts}
    )
    for attempt in range(1, max_attempts + 1):
        worker = start_server("worker", *worker_args, database=api.database)
        wait_until(
            lambda: (
                (current := get_task(api, task["task_id"]))["status"] == "PROCESSING"
                and current["attempts"] == attempt
            ),
            30,
            f"attempt {attempt} was not claimed; worker log:\n{worker.log_tail()}",
        )
        worker.kill()

    # A fresh worker's reaper finds the expired lease on the last attempt.
    reaper = start_server("worker", *worker_args, database=api.database)
    failed = wait_for_status(api, task["task_id"], {"FAILED", "COMPLETED"}, timeout=30)
    assert failed["status"] == "FAILED", f"{failed!r}; worker log:\n{reaper.log_tail()}"
    assert failed["error"]["code"] == "worker_lost"
    assert failed["attempts"] == max_attempts
    assert get_task(api, task["task_id"])["attempts"] == max_attempts


def test_expired_lease_requeues_with_worker_lost(start_server):
    api = start_server("api", "--enable-fault-injection")
    worker_args = ("--simulated-delay", "0", "--enable-fault-injection", "--lease", "1s", "--retry-base", "5s")
    task = submit(api, {"text": "lost once", "params": {"delay_ms": 600000}, "max_attempts": 3})
    worker = start_server("worker", *worker_args, database=api.database)
    wait_for_status(api, task["task_id"], "PROCESSING", timeout=30)
    worker.kill()
    start_server("worker", *worker_args, database=api.database)

    # The reaper puts the task back with a back-off of up to 5s. Until the
    # back-off passes, the task is PENDING with the error and next attempt time.
    def requeued():
        current = get_task(api, task["task_id"])
        return current if current["status"] == "PENDING" or current["attempts"] > 1 else None

    current = wait_until(requeued, 30, "the expired lease was not reaped")
    if current["status"] == "PENDING":
        assert current["error"]["code"] == "worker_lost"
        assert current["next_attempt_at"] is not None
        assert current["attempts"] == 1
    else:
        assert current["attempts"] == 2


def test_sigterm_exits_zero_within_grace(start_server):
    server = start_server("serve", "--simulated-delay", "0", "--shutdown-grace", "2s")
    submit(server, "some work")
    started = time.monotonic()
    assert server.terminate(timeout=30) == 0
    assert time.monotonic() - started < 7, "idle shutdown took longer than grace plus 5s"


def test_sigterm_returns_running_task_uncounted(start_server):
    server = start_server(
        "serve", "--simulated-delay", "0", "--enable-fault-injection", "--shutdown-grace", "1s"
    )
    task = submit(server, {"text": "interrupted", "params": {"delay_ms": 600000}})
    processing = wait_for_status(server, task["task_id"], "PROCESSING", timeout=30)
    assert processing["attempts"] == 1
    started = time.monotonic()
    exit_code = server.terminate(timeout=30)
    elapsed = time.monotonic() - started
    assert exit_code == 0, server.log_tail()
    assert elapsed < 6, f"shutdown with a 1s grace took {elapsed:.1f}s"

    viewer = start_server("api", "--enable-fault-injection", database=server.database)
    after = get_task(viewer, task["task_id"])
    assert after["status"] == "PENDING"
    assert after["attempts"] == 0
    assert after["result"] is None
    assert after["finished_at"] is None


def test_sigterm_lets_short_task_finish(start_server):
    server = start_server(
        "serve", "--simulated-delay", "0", "--enable-fault-injection", "--shutdown-grace", "20s"
    )
    task = submit(server, {"text": "almost done", "params": {"delay_ms": 1000}})
    wait_for_status(server, task["task_id"], "PROCESSING", timeout=30)
    assert server.terminate(timeout=40) == 0, server.log_tail()

    viewer = start_server("api", database=server.database)
    after = get_task(viewer, task["task_id"])
    assert after["status"] == "COMPLETED", after
    assert after["attempts"] == 1


def test_sigterm_refuses_new_connections(start_server):
    server = start_server(
        "serve", "--simulated-delay", "0", "--enable-fault-injection", "--shutdown-grace", "20s"
    )
    task = submit(server, {"text": "keeps it alive", "params": {"delay_ms": 3000}})
    wait_for_status(server, task["task_id"], "PROCESSING", timeout=30)
    server.proc.send_signal(signal.SIGTERM)

    def connection_rejected():
        try:
            server.request("GET", "/healthz", timeout=2)
        except OSError:
            return True
        return server.proc.poll() is not None

    wait_until(connection_rejected, 10, "the server kept accepting connections after SIGTERM")
    assert server.proc.wait(timeout=40) == 0


def test_sigint_exits_zero(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=40) == 0


def test_sigterm_stops_api_and_worker(start_server):
    api = start_server("api")
    worker = start_server("worker", "--simulated-delay", "0", database=api.database)
    task = submit(api, "split shutdown")
    wait_until(
        lambda: get_task(api, task["task_id"])["status"] == "COMPLETED",
        30,
        "the worker did not complete the task",
    )
    assert worker.terminate(timeout=40) == 0, worker.log_tail()
    assert api.terminate(timeout=40) == 0, api.log_tail()
