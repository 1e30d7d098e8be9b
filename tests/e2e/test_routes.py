"""Routes, methods, error codes and the shape of every response."""

import json
import time
from urllib.parse import quote

import pytest

from conftest import (
    TIMESTAMP_PATTERN,
    UUID_V7_PATTERN,
    get_task,
    submit,
    wait_for_status,
    wait_until,
)
from problems import (
    assert_problem,
    assert_validation_errors,
    parse_timestamp,
    unused_task_id,
    uuid7_millis,
)

DEFAULT_PARAMS = {"top_n": 5, "language": "english", "stem": False}


@pytest.fixture
def api_only(start_server):
    """An api process with no workers, so submitted tasks stay PENDING."""
    return start_server("api", "--simulated-delay", "0", "--enable-fault-injection")


@pytest.fixture
def plain_server(start_server):
    """A serve process without fault injection."""
    return start_server("serve", "--simulated-delay", "0")


def processing_task(server):
    task = submit(server, {"text": "slow", "params": {"delay_ms": 600000}})
    return wait_for_status(server, task["task_id"], "PROCESSING", timeout=20)


def completed_task(server):
    task = submit(server, "done soon")
    return wait_for_status(server, task["task_id"], "COMPLETED", timeout=20)


def failed_task(server):
    task = submit(server, {"text": "x", "params": {"fail_permanently": True}})
    return wait_for_status(server, task["task_id"], "FAILED", timeout=20)


# Routes and methods.


def test_submit_returns_202_with_pending_task(api_only):
    status, headers, task = api_only.request("POST", "/v1/tasks", {"text": "hello world"})
    assert status == 202
    assert headers["content-type"].startswith("application/json")
    assert task["status"] == "PENDING"
    assert task["type"] == "text.analyze"
    assert task["text_bytes"] == 11
    assert task["attempts"] == 0
    assert task["result"] is None
    assert task["error"] is None
    assert task["next_attempt_at"] is None
    assert "text" not in task


def test_submit_sets_location_header(api_only):
    status, headers, task = api_only.request("POST", "/v1/tasks", {"text": "where"})
    assert status == 202
    assert headers.get("location") == f"/v1/tasks/{task['task_id']}"


def test_get_task_returns_task(api_only):
    task = submit(api_only, "fetch me")
    status, headers, fetched = api_only.request("GET", f"/v1/tasks/{task['task_id']}")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert fetched["task_id"] == task["task_id"]
    assert fetched["created_at"] == task["created_at"]


def test_list_tasks_returns_items_and_cursor(api_only):
    task = submit(api_only, "list me")
    status, _, page = api_only.request("GET", "/v1/tasks")
    assert status == 200
    assert [item["task_id"] for item in page["items"]] == [task["task_id"]]
    assert page["next_cursor"] is None


def test_list_items_omit_result_and_text(server):
    task = submit(server, "one two three")
    wait_for_status(server, task["task_id"], "COMPLETED")
    status, _, page = server.request("GET", "/v1/tasks")
    assert status == 200
    assert len(page["items"]) == 1
    assert "result" not in page["items"][0]
    assert "text" not in page["items"][0]


def test_cancel_route_cancels_pending_task(api_only):
    task = submit(api_only, "cancel me")
    status, _, body = api_only.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
    assert status == 200
    assert body["status"] == "CANCELLED"


def test_retry_route_redrives_cancelled_task(api_only):
    task = submit(api_only, "retry me")
    api_only.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
    status, _, body = api_only.request("POST", f"/v1/tasks/{task['task_id']}/retry")
    assert status == 200
    assert body["status"] == "PENDING"


def test_healthz_answers_200(server):
    status, _, _ = server.request("GET", "/healthz")
    assert status == 200


def test_readyz_answers_200(server):
    status, _, _ = server.request("GET", "/readyz")
    assert status == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_operations_route_rejects_query_parameter(server, path, method):
    status, headers, body = server.request(method, f"{path}?verbose=1")

    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    if method == "GET":
        problem = assert_problem((status, headers, body), 400, "invalid_parameter")
        assert "verbose" in problem["detail"], problem


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_operations_route_rejects_broken_query(server, path):
    assert_problem(server.request("GET", f"{path}?%zz"), 400, "invalid_parameter")


@pytest.mark.parametrize("query", ["module=http_2xx", "name%5B%5D=a&name%5B%5D=b", "=1", "a"])
def test_metrics_ignores_query(server, query):
    status, headers, body = server.request("GET", f"/metrics?{query}")

    assert status == 200, body
    assert headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "path",
    ["/", "/nope", "/v1", "/v1/nothing", "/v2/tasks", "/v1/tasks/{id}/other", "/healthz/extra"],
)
def test_unknown_route_is_not_found(server, path):
    path = path.replace("{id}", unused_task_id())
    assert_problem(server.request("GET", path), 404, "not_found")


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("DELETE", "/v1/tasks", {"GET", "POST"}),
        ("PUT", "/v1/tasks", {"GET", "POST"}),
        ("PATCH", "/v1/tasks", {"GET", "POST"}),
        ("POST", "/v1/tasks/{id}", {"GET"}),
        ("DELETE", "/v1/tasks/{id}", {"GET"}),
        ("GET", "/v1/tasks/{id}/cancel", {"POST"}),
        ("GET", "/v1/tasks/{id}/retry", {"POST"}),
        ("POST", "/healthz", {"GET"}),
        ("POST", "/readyz", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(server, method, path, allowed):
    path = path.replace("{id}", unused_task_id())
    response = server.request(method, path)
    assert_problem(response, 405, "method_not_allowed")
    allow = response[1].get("allow")
    assert allow is not None, "405 without an Allow header"
    methods = {part.strip().upper() for part in allow.split(",")}
    assert allowed <= methods, f"Allow {allow!r} lacks {allowed}"
    assert method not in methods, f"Allow {allow!r} lists the rejected method"


# Error codes of POST /v1/tasks.


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"text": "a",}', b"{'text': 'a'}", b'{"text": "a"} extra', b"nul"],
    ids=["empty", "unclosed", "trailing-comma", "single-quotes", "trailing-data", "bad-literal"],
)
def test_malformed_json_is_invalid_json(server, body):
    assert_problem(server.request("POST", "/v1/tasks", body), 400, "invalid_json")


@pytest.mark.parametrize(
    "body", [b"[]", b'["text"]', b'"text"', b"42", b"null", b"true"], ids=lambda b: b.decode()
)
def test_non_object_json_is_invalid_json(server, body):
    assert_problem(server.request("POST", "/v1/tasks", body), 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [b'{"text": "caf\xe9"}', b'{"text": "\xc3\x28"}', b'{"text": "\xed\xa0\x80"}', b'{"te\xffxt": "a"}'],
    ids=["latin1", "bad-continuation", "encoded-surrogate", "bad-key"],
)
def test_invalid_utf8_is_invalid_json(server, body):
    assert_problem(server.request("POST", "/v1/tasks", body), 400, "invalid_json")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_wrong_content_type_is_415(server, content_type):
    body = json.dumps({"text": "a"}).encode()
    response = server.request("POST", "/v1/tasks", body, {"Content-Type": content_type})
    assert_problem(response, 415, "unsupported_media_type")


def test_json_content_type_with_charset_is_accepted(server):
    body = json.dumps({"text": "a"}).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    status, _, task = server.request("POST", "/v1/tasks", body, headers)
    assert status == 202, task


def test_text_over_limit_is_413(start_server):
    server = start_server("serve", "--simulated-delay", "0", "--max-text-bytes", "1000")
    response = server.request("POST", "/v1/tasks", {"text": "a" * 1001})
    assert_problem(response, 413, "payload_too_large")


def test_text_at_limit_is_accepted(start_server):
    server = start_server("serve", "--simulated-delay", "0", "--max-text-bytes", "1000")
    status, _, task = server.request("POST", "/v1/tasks", {"text": "a" * 1000})
    assert status == 202, task
    assert task["text_bytes"] == 1000


def test_text_limit_counts_utf8_bytes(start_server):
    server = start_server("serve", "--simulated-delay", "0", "--max-text-bytes", "1000")
    over = server.request("POST", "/v1/tasks", {"text": "\u00e9" * 500 + "a"})
    assert_problem(over, 413, "payload_too_large")
    # json.dumps escapes each é as six bytes, so the body is near 3000 bytes
    # while the text itself is exactly 1000 UTF-8 bytes.
    status, _, task = server.request("POST", "/v1/tasks", {"text": "\u00e9" * 500})
    assert status == 202, task
    assert task["text_bytes"] == 1000


def test_default_text_limit_is_one_mebibyte(plain_server):
    status, _, task = plain_server.request("POST", "/v1/tasks", {"text": "a" * 1048576})
    assert status == 202, task
    assert task["text_bytes"] == 1048576
    over = plain_server.request("POST", "/v1/tasks", {"text": "a" * 1048577})
    assert_problem(over, 413, "payload_too_large")


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "text"),
        ({"text": None}, "text"),
        ({"text": 42}, "text"),
        ({"text": ["a"]}, "text"),
        ({"text": {"a": 1}}, "text"),
        ({"text": "a", "txt": "typo"}, "txt"),
        ({"text": "a", "priority": 1}, "priority"),
        ({"text": "a", "type": 7}, "type"),
        ({"text": "a", "params": []}, "params"),
        ({"text": "a", "params": "top_n=3"}, "params"),
        ({"text": "a", "params": {"top": 3}}, "top"),
        ({"text": "a", "params": {"top_n": 0}}, "top_n"),
        ({"text": "a", "params": {"top_n": 101}}, "top_n"),
        ({"text": "a", "params": {"top_n": -1}}, "top_n"),
        ({"text": "a", "params": {"top_n": "5"}}, "top_n"),
        ({"text": "a", "params": {"top_n": 2.5}}, "top_n"),
        ({"text": "a", "params": {"top_n": None}}, "top_n"),
        ({"text": "a", "params": {"language": "klingon"}}, "language"),
        ({"text": "a", "params": {"language": 1}}, "language"),
        ({"text": "a", "params": {"stem": "yes"}}, "stem"),
        ({"text": "a", "params": {"stem": 1}}, "stem"),
        ({"text": "a", "max_attempts": 0}, "max_attempts"),
        ({"text": "a", "max_attempts": 21}, "max_attempts"),
        ({"text": "a", "max_attempts": -3}, "max_attempts"),
        ({"text": "a", "max_attempts": "3"}, "max_attempts"),
        ({"text": "a", "max_attempts": 2.5}, "max_attempts"),
        ({"text": "a", "metadata": []}, "metadata"),
        ({"text": "a", "metadata": "acme"}, "metadata"),
        ({"text": "a", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"text": "a", "metadata": {"": "v"}}, "metadata"),
        ({"text": "a", "metadata": {"k" * 65: "v"}}, "metadata"),
        ({"text": "a", "metadata": {"k": "v" * 257}}, "metadata"),
        ({"text": "a", "metadata": {"k": 1}}, "metadata"),
        ({"text": "a", "metadata": {"k": None}}, "metadata"),
        ({"text": "a", "metadata": {"k": {"nested": "v"}}}, "metadata"),
    ],
    ids=lambda value: json.dumps(value)[:40] if isinstance(value, dict) else value,
)
def test_schema_violation_is_validation_failed(plain_server, body, field):
    problem = assert_problem(plain_server.request("POST", "/v1/tasks", body), 422, "validation_failed")
    fields = assert_validation_errors(problem)
    assert any(field in name for name in fields), f"no error names {field!r}: {fields}"


def test_validation_lists_every_broken_field(plain_server):
    body = {"text": 1, "max_attempts": 0, "params": {"top_n": 0}}
    problem = assert_problem(plain_server.request("POST", "/v1/tasks", body), 422, "validation_failed")
    fields = assert_validation_errors(problem)
    for field in ("text", "max_attempts", "top_n"):
        assert any(field in name for name in fields), f"no error names {field!r}: {fields}"


@pytest.mark.parametrize(
    "escape", ["\\ud800", "\\udfff", "a\\ud800b", "\\udc00\\ud800"], ids=["high", "low", "inside", "reversed"]
)
def test_lone_surrogate_is_validation_failed(server, escape):
    body = ('{"text": "' + escape + '"}').encode()
    problem = assert_problem(server.request("POST", "/v1/tasks", body), 422, "validation_failed")
    fields = assert_validation_errors(problem)
    assert any("text" in name for name in fields), fields


def test_lone_surrogate_in_metadata_is_validation_failed(server):
    body = b'{"text": "a", "metadata": {"k": "\\ud800"}}'
    assert_problem(server.request("POST", "/v1/tasks", body), 422, "validation_failed")


@pytest.mark.parametrize(
    "params",
    [{"fail_attempts": 1}, {"fail_permanently": True}, {"delay_ms": 10}],
    ids=["fail_attempts", "fail_permanently", "delay_ms"],
)
def test_fault_keys_without_flag_are_validation_failed(plain_server, params):
    body = {"text": "a", "params": params}
    problem = assert_problem(plain_server.request("POST", "/v1/tasks", body), 422, "validation_failed")
    fields = assert_validation_errors(problem)
    key = next(iter(params))
    assert any(key in name for name in fields), f"no error names {key!r}: {fields}"


@pytest.mark.parametrize(
    "params",
    [
        {"fail_attempts": -1},
        {"fail_attempts": 21},
        {"fail_attempts": "1"},
        {"fail_permanently": "yes"},
        {"delay_ms": -1},
        {"delay_ms": 600001},
        {"delay_ms": 1.5},
    ],
    ids=json.dumps,
)
def test_fault_keys_out_of_range_are_validation_failed(api_only, params):
    body = {"text": "a", "params": params}
    problem = assert_problem(api_only.request("POST", "/v1/tasks", body), 422, "validation_failed")
    assert_validation_errors(problem)


@pytest.mark.parametrize(
    "params",
    [{"fail_attempts": 0}, {"fail_attempts": 20}, {"fail_permanently": False}, {"delay_ms": 0}, {"delay_ms": 600000}],
    ids=json.dumps,
)
def test_fault_keys_in_range_are_accepted(api_only, params):
    status, _, task = api_only.request("POST", "/v1/tasks", {"text": "a", "params": params})
    assert status == 202, task


@pytest.mark.parametrize("task_type", ["text.summarize", "", "TEXT.ANALYZE", "text.analyze "])
def test_unknown_type_is_unknown_task_type(server, task_type):
    body = {"text": "a", "type": task_type}
    assert_problem(server.request("POST", "/v1/tasks", body), 422, "unknown_task_type")


def test_boundary_values_are_accepted(plain_server):
    body = {
        "text": "",
        "type": "text.analyze",
        "params": {"top_n": 100, "language": "german", "stem": True},
        "max_attempts": 20,
        "metadata": {("k%02d" % i) + "x" * 61: "v" * 256 for i in range(16)},
    }
    status, _, task = plain_server.request("POST", "/v1/tasks", body)
    assert status == 202, task
    assert task["max_attempts"] == 20
    assert task["metadata"] == body["metadata"]
    assert task["params"] == body["params"]


@pytest.mark.parametrize("top_n", [1, 100])
def test_top_n_bounds_are_accepted(plain_server, top_n):
    status, _, task = plain_server.request("POST", "/v1/tasks", {"text": "a", "params": {"top_n": top_n}})
    assert status == 202, task
    assert task["params"]["top_n"] == top_n


def test_max_attempts_one_is_accepted(plain_server):
    status, _, task = plain_server.request("POST", "/v1/tasks", {"text": "a", "max_attempts": 1})
    assert status == 202, task
    assert task["max_attempts"] == 1


@pytest.mark.parametrize(
    "language",
    [
        "english", "danish", "dutch", "finnish", "french", "german", "hungarian", "italian",
        "nepali", "norwegian", "portuguese", "russian", "spanish", "swedish", "turkish",
    ],
)
def test_every_listed_language_is_accepted(plain_server, language):
    body = {"text": "a", "params": {"language": language}}
    status, _, task = plain_server.request("POST", "/v1/tasks", body)
    assert status == 202, task
    assert task["params"]["language"] == language


# Idempotency-Key checks.


@pytest.mark.parametrize(
    "key",
    ["", "k" * 256, "caf\u00e9".encode("utf-8"), "two words"],
    ids=["empty", "too-long", "non-ascii", "space"],
)
def test_bad_idempotency_key_is_400(server, key):
    response = server.request("POST", "/v1/tasks", {"text": "a"}, {"Idempotency-Key": key})
    assert_problem(response, 400, "invalid_idempotency_key")


def test_bad_idempotency_key_creates_nothing(server):
    server.request("POST", "/v1/tasks", {"text": "a"}, {"Idempotency-Key": "k" * 256})
    status, _, page = server.request("GET", "/v1/tasks")
    assert status == 200
    assert page["items"] == []


def test_longest_idempotency_key_is_accepted(server):
    key = "".join(chr(33 + i % 94) for i in range(255))
    status, _, task = server.request("POST", "/v1/tasks", {"text": "a"}, {"Idempotency-Key": key})
    assert status == 202, task


# Task ids.


@pytest.mark.parametrize(
    "task_id",
    ["not-a-uuid", "12345", "0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1", "0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1bb",
     "0193a1b2x7c3d-7e4f-8a5b-6c7d8e9f0a1b", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"],
)
@pytest.mark.parametrize("action", ["get", "cancel", "retry"])
def test_malformed_task_id_is_invalid_task_id(server, task_id, action):
    if action == "get":
        response = server.request("GET", f"/v1/tasks/{task_id}")
    else:
        response = server.request("POST", f"/v1/tasks/{task_id}/{action}")
    assert_problem(response, 400, "invalid_task_id")


@pytest.mark.parametrize("action", ["get", "cancel", "retry"])
def test_unknown_task_is_task_not_found(server, action):
    task_id = unused_task_id()
    if action == "get":
        response = server.request("GET", f"/v1/tasks/{task_id}")
    else:
        response = server.request("POST", f"/v1/tasks/{task_id}/{action}")
    assert_problem(response, 404, "task_not_found")


def test_task_id_is_lowercase_uuid_v7(server):
    before_ms = int(time.time() * 1000)
    task = submit(server, "id shape")
    after_ms = int(time.time() * 1000)
    assert UUID_V7_PATTERN.match(task["task_id"]), task["task_id"]
    # The 48-bit prefix is the creation time in Unix milliseconds; one
    # second of slack covers clock granularity.
    stamp = uuid7_millis(task["task_id"])
    assert before_ms - 1000 <= stamp <= after_ms + 1000


def test_task_ids_are_distinct(server):
    ids = {submit(server, "same text")["task_id"] for _ in range(50)}
    assert len(ids) == 50


# Cancel and retry conflicts.


def test_cancel_completed_is_task_not_cancellable(server):
    task = completed_task(server)
    response = server.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
    assert_problem(response, 409, "task_not_cancellable")


def test_cancel_failed_is_task_not_cancellable(server):
    task = failed_task(server)
    response = server.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
    assert_problem(response, 409, "task_not_cancellable")


def test_retry_pending_is_task_not_retryable(api_only):
    task = submit(api_only, "waiting")
    response = api_only.request("POST", f"/v1/tasks/{task['task_id']}/retry")
    assert_problem(response, 409, "task_not_retryable")


def test_retry_processing_is_task_not_retryable(server):
    task = processing_task(server)
    response = server.request("POST", f"/v1/tasks/{task['task_id']}/retry")
    assert_problem(response, 409, "task_not_retryable")


def test_retry_completed_is_task_not_retryable(server):
    task = completed_task(server)
    response = server.request("POST", f"/v1/tasks/{task['task_id']}/retry")
    assert_problem(response, 409, "task_not_retryable")


# Query parameters.


@pytest.mark.parametrize(
    "query",
    [
        "status=DONE",
        "status=pending",
        "status=PENDING,BOGUS",
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=ten",
        "limit=2.5",
        "order=sideways",
        "order=ASCENDING",
        "created_after=yesterday",
        "created_after=2026-13-01T00:00:00Z",
        "created_before=12345",
        "color=blue",
    ],
)
def test_bad_list_parameter_is_invalid_parameter(server, query):
    assert_problem(server.request("GET", f"/v1/tasks?{query}"), 400, "invalid_parameter")


@pytest.mark.parametrize("wait", ["61", "-1", "abc", "1e9", "100000000000000000000"])
def test_wait_out_of_range_is_invalid_parameter(server, wait):
    task = submit(server, "wait")
    response = server.request("GET", f"/v1/tasks/{task['task_id']}?wait={wait}")
    assert_problem(response, 400, "invalid_parameter")


def test_forged_cursor_is_invalid_cursor(server):
    assert_problem(server.request("GET", "/v1/tasks?cursor=forged"), 400, "invalid_cursor")


def _first_cursor(server, query):
    for index in range(3):
        submit(server, f"cursor {index}")
    path = "/v1/tasks?limit=1" + (f"&{query}" if query else "")
    status, _, page = server.request("GET", path)
    assert status == 200, page
    assert page["next_cursor"], f"no next_cursor on a first page of 3 tasks: {page!r}"
    return page["next_cursor"]


def test_issued_cursor_is_accepted(api_only):
    cursor = _first_cursor(api_only, "order=asc")
    status, _, page = api_only.request("GET", f"/v1/tasks?limit=1&order=asc&cursor={quote(cursor, safe='')}")
    assert status == 200, page
    assert len(page["items"]) == 1


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_corrupted_cursor_is_invalid_cursor(api_only, position):
    cursor = _first_cursor(api_only, "order=asc")
    index = {"first": 0, "middle": len(cursor) // 2, "last": len(cursor) - 1}[position]
    replacement = "A" if cursor[index] != "A" else "B"
    corrupted = cursor[:index] + replacement + cursor[index + 1 :]
    response = api_only.request("GET", f"/v1/tasks?limit=1&order=asc&cursor={quote(corrupted, safe='')}")
    assert_problem(response, 400, "invalid_cursor")


def test_truncated_cursor_is_invalid_cursor(api_only):
    cursor = _first_cursor(api_only, "")
    response = api_only.request("GET", f"/v1/tasks?limit=1&cursor={quote(cursor[:-4], safe='')}")
    assert_problem(response, 400, "invalid_cursor")


@pytest.mark.parametrize(
    "issued_query, reused_query",
    [
        ("order=asc", "order=desc"),
        ("order=desc", "order=asc"),
        ("", "status=PENDING"),
        ("status=PENDING", "status=COMPLETED"),
        ("status=PENDING", ""),
        ("", "type=text.analyze"),
        ("", "created_after=2000-01-01T00:00:00Z"),
    ],
)
def test_cursor_with_other_query_is_invalid_cursor(api_only, issued_query, reused_query):
    cursor = _first_cursor(api_only, issued_query)
    separator = "&" if reused_query else ""
    path = f"/v1/tasks?limit=1&{reused_query}{separator}cursor={quote(cursor, safe='')}"
    assert_problem(api_only.request("GET", path), 400, "invalid_cursor")


# Request ids.


def test_request_id_is_echoed(server):
    _, headers, _ = server.request("GET", "/healthz", headers={"X-Request-Id": "test-abc.123"})
    assert headers.get("x-request-id") == "test-abc.123"


def test_request_id_is_echoed_on_errors(server):
    _, headers, _ = server.request("GET", "/nope", headers={"X-Request-Id": "err-42"})
    assert headers.get("x-request-id") == "err-42"


def test_request_id_is_generated_when_absent(server):
    ids = set()
    for path in ("/healthz", "/v1/tasks", "/nope"):
        _, headers, _ = server.request("GET", path)
        request_id = headers.get("x-request-id")
        assert request_id, f"no X-Request-Id on {path}"
        ids.add(request_id)
    assert len(ids) == 3, f"generated ids repeat: {ids}"


@pytest.mark.parametrize("sent", ["x" * 129, "has space", ""], ids=["too-long", "space", "empty"])
def test_insane_request_id_is_replaced(server, sent):
    _, headers, _ = server.request("GET", "/healthz", headers={"X-Request-Id": sent})
    request_id = headers.get("x-request-id")
    assert request_id, "no X-Request-Id"
    assert request_id != sent


def test_longest_sane_request_id_is_echoed(server):
    sent = "".join(chr(33 + i % 94) for i in range(128))
    _, headers, _ = server.request("GET", "/healthz", headers={"X-Request-Id": sent})
    assert headers.get("x-request-id") == sent


# Task representation.


def test_timestamps_are_rfc3339_utc_millis(server):
    task = submit(server, "stamp me")
    assert TIMESTAMP_PATTERN.match(task["created_at"]), task["created_at"]
    assert TIMESTAMP_PATTERN.match(task["updated_at"]), task["updated_at"]
    done = wait_for_status(server, task["task_id"], "COMPLETED")
    created = parse_timestamp(done["created_at"])
    started = parse_timestamp(done["started_at"])
    finished = parse_timestamp(done["finished_at"])
    updated = parse_timestamp(done["updated_at"])
    assert created <= started <= finished
    assert updated >= finished
    assert done["next_attempt_at"] is None
    assert done["created_at"] == task["created_at"]


def test_pending_task_has_null_times(api_only):
    task = submit(api_only, "not started")
    fetched = get_task(api_only, task["task_id"])
    assert fetched["started_at"] is None
    assert fetched["finished_at"] is None
    assert fetched["next_attempt_at"] is None


def test_non_terminal_get_has_retry_after(api_only):
    task = submit(api_only, "poll me")
    status, headers, _ = api_only.request("GET", f"/v1/tasks/{task['task_id']}")
    assert status == 200
    retry_after = headers.get("retry-after")
    assert retry_after is not None, "no Retry-After on a PENDING task"
    assert retry_after.isdigit(), f"Retry-After {retry_after!r} is not delta-seconds"


def test_processing_get_has_retry_after(server):
    task = processing_task(server)
    status, headers, body = server.request("GET", f"/v1/tasks/{task['task_id']}")
    assert status == 200
    assert body["status"] == "PROCESSING"
    assert headers.get("retry-after", "").isdigit(), headers


@pytest.mark.parametrize(
    "text",
    [
        "nul\u0000inside",
        "\u0000",
        "emoji \U0001F600 and clef \U0001D11E",
        "mixed \u00e9\u4e2d\u6587 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \U00020000",
        "line\u2028separator\ttab\r\nnewline \"quoted\" back\\slash",
        "\ufeffbom and \uffff nonchar and \U0010FFFF",
        "",
    ],
    ids=["nul", "only-nul", "non-bmp", "scripts", "controls", "edges", "empty"],
)
@pytest.mark.parametrize("ascii_escaped", [True, False], ids=["escaped", "raw-utf8"])
def test_include_text_round_trips(server, text, ascii_escaped):
    body = json.dumps({"text": text}, ensure_ascii=ascii_escaped).encode("utf-8")
    status, _, task = server.request("POST", "/v1/tasks", body)
    assert status == 202, task
    assert task["text_bytes"] == len(text.encode("utf-8"))
    fetched = get_task(server, task["task_id"], "?include=text")
    assert fetched["text"] == text
    plain = get_task(server, task["task_id"])
    assert "text" not in plain


def test_params_defaults_are_filled_in(plain_server):
    task = submit(plain_server, "defaults")
    assert task["params"] == DEFAULT_PARAMS
    assert get_task(plain_server, task["task_id"])["params"] == DEFAULT_PARAMS


def test_partial_params_get_defaults(plain_server):
    task = submit(plain_server, {"text": "partial", "params": {"top_n": 3}})
    assert task["params"] == {"top_n": 3, "language": "english", "stem": False}


def test_max_attempts_defaults_to_three(plain_server):
    assert submit(plain_server, "attempts")["max_attempts"] == 3


def test_max_attempts_default_follows_flag(start_server):
    server = start_server("api", "--max-attempts", "5")
    assert submit(server, "attempts")["max_attempts"] == 5


def test_explicit_max_attempts_is_kept(plain_server):
    assert submit(plain_server, {"text": "a", "max_attempts": 7})["max_attempts"] == 7


def test_metadata_is_echoed(plain_server):
    metadata = {"customer": "acme", "note": "caf\u00e9 \U0001F600", "empty": ""}
    task = submit(plain_server, {"text": "meta", "metadata": metadata})
    assert task["metadata"] == metadata
    assert get_task(plain_server, task["task_id"])["metadata"] == metadata


def test_metadata_absent_when_not_sent(plain_server):
    task = submit(plain_server, "no meta")
    assert task.get("metadata") is None


def test_explicit_default_type_is_accepted(plain_server):
    task = submit(plain_server, {"text": "typed", "type": "text.analyze"})
    assert task["type"] == "text.analyze"


def test_metadata_limits_count_characters(plain_server):
    metadata = {"\u00e9" * 64: "\u00fc" * 256, "\U0001F600" * 64: "v"}
    status, _, task = plain_server.request("POST", "/v1/tasks", {"text": "a", "metadata": metadata})
    assert status == 202, task
    assert task["metadata"] == metadata
    too_long_key = {"\u00e9" * 65: "v"}
    response = plain_server.request("POST", "/v1/tasks", {"text": "a", "metadata": too_long_key})
    assert_problem(response, 422, "validation_failed")
    too_long_value = {"k": "\u00fc" * 257}
    response = plain_server.request("POST", "/v1/tasks", {"text": "a", "metadata": too_long_value})
    assert_problem(response, 422, "validation_failed")


# Settings and logs.


def test_setting_read_from_environment(start_server):
    server = start_server("serve", "--simulated-delay", "0", env={"CONVEYOR_MAX_TEXT_BYTES": "100"})
    assert_problem(server.request("POST", "/v1/tasks", {"text": "a" * 101}), 413, "payload_too_large")
    status, _, task = server.request("POST", "/v1/tasks", {"text": "a" * 100})
    assert status == 202, task


def test_flag_beats_environment(start_server):
    server = start_server(
        "serve", "--simulated-delay", "0", "--max-text-bytes", "200",
        env={"CONVEYOR_MAX_TEXT_BYTES": "100"},
    )
    status, _, task = server.request("POST", "/v1/tasks", {"text": "a" * 150})
    assert status == 202, task


def test_json_log_lines_are_objects(server):
    task = submit(server, "logged")
    wait_for_status(server, task["task_id"], "COMPLETED")
    server.request("GET", "/nope")
    lines = server.log_lines()
    assert lines, "the server logged nothing"
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert isinstance(record.get("msg"), str), line


def test_startup_log_states_authentication_off(server):
    # The line may follow the listening line, so wait for it.
    def logged():
        messages = [json.loads(line).get("msg", "") for line in server.log_lines()]
        return any("authentication" in message.lower() for message in messages)

    wait_until(logged, 10, f"no start-up line mentions authentication:\n{server.log_tail()}")
