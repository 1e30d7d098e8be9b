"""/metrics, structured request and task logs, and W3C trace context."""

import concurrent.futures
import json
import re
import shutil
import socket
import subprocess
import threading
import time

from conftest import (
    ServerProcess,
    hermetic_environment,
    submit,
    wait_for_status,
    wait_until,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

SAMPLE_PATTERN = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL_PATTERN = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_samples(text):
    """Return {(name, frozenset of label pairs): value} for every sample line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE_PATTERN.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        pairs = frozenset(LABEL_PATTERN.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def sample(samples, name, **labels):
    """Return the value of one series, or None when it is absent."""
    return samples.get((name, frozenset(labels.items())))


def scrape(process):
    status, headers, body = process.request("GET", "/metrics")
    assert status == 200, f"/metrics returned {status}: {body!r}"
    assert headers["content-type"] == PROMETHEUS_CONTENT_TYPE
    return body.decode("utf-8")


def promtool_check(text):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing; scripts/install-deps.sh installs the prometheus package"
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode("utf-8"), capture_output=True, timeout=60
    )
    assert result.returncode == 0, (
        f"promtool check metrics failed:\n{result.stdout.decode()}{result.stderr.decode()}"
    )


def json_records(process):
    """Every log line of the process, parsed; fails on a line that is not JSON."""
    records = []
    for line in process.log_lines():
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"a log line is not JSON: {line!r}")
    return records


def find_record(process, **fields):
    """Wait for a log record with all of `fields`; returns it."""

    def found():
        for record in json_records(process):
            if all(record.get(key) == value for key, value in fields.items()):
                return record
        return None

    return wait_until(found, 10, f"no log line with {fields}")


def wait_for_counts(process, predicate, message):
    """Scrape until the task counts satisfy predicate; the counts are cached for 1 s."""

    def settled():
        samples = parse_samples(scrape(process))
        return samples if predicate(samples) else None

    return wait_until(settled, 15, message, interval=0.2)


def test_metrics_while_tasks_flow(start_server):
    server = start_server("serve", "--simulated-delay", "0..30ms")
    count = 60
    stop = threading.Event()
    scrapes = []

    def scrape_until_stopped():
        for _ in range(600):
            if stop.is_set():
                return
            scrapes.append(scrape(server))
            time.sleep(0.05)

    scraper = threading.Thread(target=scrape_until_stopped)
    scraper.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            tasks = list(pool.map(lambda index: submit(server, f"metric task {index}"), range(count)))
        for task in tasks:
            wait_for_status(server, task["task_id"], "COMPLETED")
    finally:
        stop.set()
        scraper.join(60)

    assert scrapes, "no scrape ran while tasks were submitted"
    for text in scrapes[:: max(1, len(scrapes) // 4)]:
        promtool_check(text)
        during = parse_samples(text)
        created = sample(during, "conveyor_tasks_created_total")
        assert created is not None and 0 <= created <= count
        for state in ("FAILED", "CANCELLED"):
            assert sample(during, "conveyor_tasks", state=state) in (None, 0.0)

    samples = wait_for_counts(
        server,
        lambda s: sample(s, "conveyor_tasks", state="COMPLETED") == count,
        f"conveyor_tasks{{state=COMPLETED}} did not reach {count}",
    )
    promtool_check(scrape(server))
    assert sample(samples, "conveyor_tasks_created_total") == count
    unfinished_and_done = sum(
        sample(samples, "conveyor_tasks", state=state)
        for state in ("PENDING", "PROCESSING", "COMPLETED")
    )
    assert unfinished_and_done == count
    assert sample(samples, "conveyor_tasks", state="FAILED") == 0
    assert sample(samples, "conveyor_tasks", state="CANCELLED") == 0
    assert sample(samples, "conveyor_task_attempts_started_total") == count
    assert sample(samples, "conveyor_task_attempts_completed_total") == count
    assert sample(samples, "conveyor_task_retries_scheduled_total") == 0
    assert sample(samples, "conveyor_tasks_dead_lettered_total") == 0
    assert (
        sample(samples, "conveyor_http_requests_total", route="/v1/tasks", method="POST", status="202")
        == count
    )
    assert (
        sample(samples, "conveyor_http_request_duration_seconds_count", route="/v1/tasks", method="POST")
        == count
    )
    assert (
        sample(
            samples,
            "conveyor_http_request_duration_seconds_bucket",
            route="/v1/tasks",
            method="POST",
            le="+Inf",
        )
        == count
    )
    assert sample(samples, "conveyor_queue_depth") == 0
    assert sample(samples, "conveyor_oldest_pending_age_seconds") == 0
    assert sample(samples, "conveyor_worker_slots_busy") == 0
    assert sample(samples, "conveyor_worker_slots") == 1000
    assert sample(samples, "conveyor_db_pool_threads") == 16
    assert sample(samples, "conveyor_db_errors_total", kind="unavailable") == 0


def test_metrics_count_retries_and_dead_letters(start_server):
    server = start_server(
        "serve",
        "--simulated-delay", "0",
        "--enable-fault-injection",
        "--retry-base", "10ms",
        "--retry-cap", "10ms",
    )
    flaky = submit(server, {"text": "flaky", "params": {"fail_attempts": 1}, "max_attempts": 3})
    broken = submit(server, {"text": "broken", "params": {"fail_attempts": 5}, "max_attempts": 2})
    wait_for_status(server, flaky["task_id"], "COMPLETED")
    wait_for_status(server, broken["task_id"], "FAILED")

    samples = wait_for_counts(
        server,
        lambda s: sample(s, "conveyor_tasks", state="FAILED") == 1
        and sample(s, "conveyor_tasks", state="COMPLETED") == 1,
        "the task counts did not reach one COMPLETED and one FAILED",
    )
    assert sample(samples, "conveyor_task_attempts_started_total") == 4
    assert sample(samples, "conveyor_task_attempts_completed_total") == 1
    assert sample(samples, "conveyor_task_retries_scheduled_total") == 2
    assert sample(samples, "conveyor_tasks_dead_lettered_total") == 1
    assert sample(samples, "conveyor_tasks", state="PENDING") == 0


def test_queue_depth_and_oldest_age_without_workers(start_server):
    api = start_server("api")
    for index in range(3):
        submit(api, f"waiting {index}")
    time.sleep(1.2)  # the oldest task is then at least this old

    samples = wait_for_counts(
        api,
        lambda s: sample(s, "conveyor_queue_depth") == 3,
        "conveyor_queue_depth did not reach 3",
    )
    assert sample(samples, "conveyor_tasks", state="PENDING") == 3
    assert sample(samples, "conveyor_oldest_pending_age_seconds") >= 1.0
    assert sample(samples, "conveyor_worker_slots") == 0
    promtool_check(scrape(api))


def test_metrics_route_rejects_post(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    status, headers, _ = server.request("POST", "/metrics", {})
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


def test_unreadable_request_is_counted_and_logged(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = connection.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400"), reply

    samples = parse_samples(scrape(server))
    assert (
        sample(samples, "conveyor_http_requests_total", route="unmatched", method="OTHER", status="400")
        == 1
    )
    record = find_record(server, msg="request", route="unmatched", status=400)
    assert record["error"]
    assert re.fullmatch(r"[0-9a-f]{32}", record["request_id"])


def test_request_log_line_carries_request_id(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    status, headers, task = server.request(
        "POST", "/v1/tasks", {"text": "logged"}, {"X-Request-Id": "req-observability-1"}
    )
    assert status == 202
    assert headers["x-request-id"] == "req-observability-1"
    status, headers, _ = server.request("GET", f"/v1/tasks/{task['task_id']}")
    assert status == 200
    generated = headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)

    posted = find_record(server, msg="request", request_id="req-observability-1")
    assert posted["method"] == "POST"
    assert posted["route"] == "/v1/tasks"
    assert posted["status"] == 202
    assert posted["tenant"] == ""
    assert posted["level"] == "info"
    assert posted["component"] == "http"
    assert isinstance(posted["latency_ms"], (int, float))
    assert posted["latency_ms"] >= 0
    assert "trace_id" not in posted
    fetched = find_record(server, msg="request", request_id=generated)
    assert fetched["route"] == "/v1/tasks/{id}", "the route template, not the raw path"
    assert fetched["status"] == 200


def test_malformed_request_id_is_replaced(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    status, headers, _ = server.request("GET", "/healthz", headers={"X-Request-Id": "has space"})
    assert status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


def test_default_logs_are_json_without_secrets(new_database):
    database = new_database()
    process = ServerProcess(
        "serve",
        ["--listen", "127.0.0.1:0", "--database", database, "--simulated-delay", "0"],
        database,
        hermetic_environment(None),
    )
    try:
        process.wait_listening()
        secret_token = "tok-3c1d7e2f-never-logged"
        secret_text = "a submitted sentence 5b9e0a77 that stays out of logs"
        status, _, task = process.request(
            "POST",
            "/v1/tasks",
            {"text": secret_text},
            {"Authorization": f"Bearer {secret_token}", "X-Request-Id": "req-secret"},
        )
        assert status == 202
        wait_for_status(process, task["task_id"], "COMPLETED")
        find_record(process, msg="task completed", task_id=task["task_id"])
        lines = process.log_lines()
        assert lines
        for line in lines:
            assert isinstance(json.loads(line), dict), line
            assert secret_token not in line
            assert secret_text not in line
    finally:
        process.kill()
        process.join_readers()


def test_traceparent_follows_task_into_worker_log(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    status, _, task = server.request(
        "POST",
        "/v1/tasks",
        {"text": "traced work"},
        {"traceparent": TRACEPARENT, "X-Request-Id": "req-traced"},
    )
    assert status == 202
    wait_for_status(server, task["task_id"], "COMPLETED")

    request = find_record(server, msg="request", request_id="req-traced")
    assert request["trace_id"] == TRACE_ID
    assert request["parent_span_id"] == PARENT_ID
    submitted = find_record(server, msg="task submitted", task_id=task["task_id"])
    assert submitted["trace_id"] == TRACE_ID
    assert submitted["to"] == "PENDING"
    started = find_record(server, msg="task started", task_id=task["task_id"])
    assert started["trace_id"] == TRACE_ID
    assert started["parent_span_id"] == PARENT_ID
    assert started["from"] == "PENDING"
    assert started["to"] == "PROCESSING"
    assert started["attempt"] == 1
    assert started["tenant"] == ""
    completed = find_record(server, msg="task completed", task_id=task["task_id"])
    assert completed["trace_id"] == TRACE_ID
    assert completed["from"] == "PROCESSING"
    assert completed["to"] == "COMPLETED"


def test_invalid_traceparent_is_ignored(start_server):
    server = start_server("serve", "--simulated-delay", "0")
    invalid = f"00-{TRACE_ID.upper()}-{PARENT_ID}-01"
    status, _, task = server.request(
        "POST",
        "/v1/tasks",
        {"text": "not traced"},
        {"traceparent": invalid, "X-Request-Id": "req-bad-trace"},
    )
    assert status == 202, "an invalid traceparent is ignored, not rejected"
    wait_for_status(server, task["task_id"], "COMPLETED")

    request = find_record(server, msg="request", request_id="req-bad-trace")
    assert "trace_id" not in request
    started = find_record(server, msg="task started", task_id=task["task_id"])
    assert "trace_id" not in started


def test_worker_metrics_listener(start_server):
    api = start_server("api", "--simulated-delay", "0")
    worker = start_server(
        "worker",
        "--simulated-delay", "0",
        "--concurrency", "7",
        "--metrics-listen", "127.0.0.1:0",
        database=api.database,
    )
    worker.wait_listening()
    status, _, task = api.request(
        "POST", "/v1/tasks", {"text": "split traced"}, {"traceparent": TRACEPARENT}
    )
    assert status == 202
    wait_for_status(api, task["task_id"], "COMPLETED")

    started = find_record(worker, msg="task started", task_id=task["task_id"])
    assert started["trace_id"] == TRACE_ID
    completed = find_record(worker, msg="task completed", task_id=task["task_id"])
    assert completed["trace_id"] == TRACE_ID

    worker_text = scrape(worker)
    promtool_check(worker_text)
    worker_samples = parse_samples(worker_text)
    assert sample(worker_samples, "conveyor_worker_slots") == 7
    assert sample(worker_samples, "conveyor_task_attempts_started_total") == 1
    assert sample(worker_samples, "conveyor_task_attempts_completed_total") == 1
    assert sample(worker_samples, "conveyor_tasks_created_total") == 0
    api_samples = wait_for_counts(
        api,
        lambda s: sample(s, "conveyor_tasks", state="COMPLETED") == 1,
        "the api's counts did not show the completed task",
    )
    assert sample(api_samples, "conveyor_tasks_created_total") == 1
    assert sample(api_samples, "conveyor_task_attempts_started_total") == 0
    assert sample(api_samples, "conveyor_worker_slots") == 0

    status, _, _ = worker.request("GET", "/healthz")
    assert status == 200
    status, _, _ = worker.request("GET", "/v1/tasks")
    assert status == 404, "a worker's listener serves no API route"
    status, _, _ = worker.request("POST", "/v1/tasks", {"text": "not here"})
    assert status == 404
