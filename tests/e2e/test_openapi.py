"""GET /openapi.json: the document matches the server that serves it.

Response bodies are checked against the document's schemas with Debian's
python3-jsonschema (OpenAPI 3.1 schemas are JSON Schema draft 2020-12).
"""

import json

import jsonschema
import pytest

from conftest import REPOSITORY, get_task, submit, wait_for_status
from problems import unused_task_id

DOCUMENT_FILE = REPOSITORY / "src" / "http" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture
def api_only(start_server):
    """An api process with no workers, so submitted tasks stay PENDING."""
    return start_server("api", "--simulated-delay", "0")


@pytest.fixture(scope="module")
def document():
    """The document in the repository; a test checks that the server serves it."""
    return json.loads(DOCUMENT_FILE.read_text(encoding="utf-8"))


def resolve(document, node):
    """Follow a local $ref such as #/components/responses/BadRequest."""
    while isinstance(node, dict) and "$ref" in node:
        assert node["$ref"].startswith("#/"), f"non-local $ref {node['$ref']}"
        target = document
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def operation(document, template, method):
    path_item = document["paths"].get(template)
    assert path_item is not None, f"{template} is not documented"
    found = path_item.get(method.lower())
    assert found is not None, f"{method} {template} is not documented"
    return found


def documented_response(document, template, method, status):
    responses = operation(document, template, method)["responses"]
    response = responses.get(str(status))
    assert response is not None, (
        f"{method} {template} answered {status}, which the document does not list "
        f"(it lists {sorted(responses)})"
    )
    return resolve(document, response)


def check_response(document, template, method, response, expected_status):
    """Require the status, then a body and headers that the document describes."""
    status, headers, body = response
    assert status == expected_status, f"{method} {template}: expected {expected_status}, got {status}: {body!r}"
    described = documented_response(document, template, method, status)
    media_type = headers.get("content-type", "").split(";")[0].strip()
    content = described.get("content", {})
    matching = [name for name in content if name.split(";")[0].strip() == media_type]
    assert matching, f"{method} {template} {status}: content type {media_type!r} is not one of {sorted(content)}"
    schema = content[matching[0]]["schema"]
    resolver = jsonschema.RefResolver.from_schema(document)
    validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.path))
    assert not errors, f"{method} {template} {status} body breaks its schema: {errors[0].message}; body {body!r}"
    for name in described.get("headers", {}):
        if name in ("Location", "Allow", "X-Request-Id"):
            assert name.lower() in headers, f"{method} {template} {status} lacks {name}"
    return body


def test_served_document_is_the_repository_file(server, document):
    status, headers, body = server.request("GET", "/openapi.json")
    assert status == 200, f"GET /openapi.json returned {status}: {body!r}"
    assert headers["content-type"] == "application/json"
    assert body == document


def test_document_is_openapi_31(document):
    assert document["openapi"].startswith("3.1.")


def test_document_is_open_without_keys(server):
    status, _, _ = server.request("GET", "/openapi.json", headers={"Authorization": "Bearer wrong"})
    assert status == 200


def test_head_answers_document_headers(server):
    status, headers, body = server.request("HEAD", "/openapi.json")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(DOCUMENT_FILE.read_bytes())
    assert body == b""


def test_every_documented_operation_exists(server, document):
    task_id = unused_task_id()
    checked = 0
    for template, path_item in document["paths"].items():
        path = template.replace("{task_id}", task_id)
        for method in METHODS:
            if method not in path_item:
                continue
            body = {"text": "route check"} if method == "post" else None
            status, _, answer = server.request(method.upper(), path, body)
            code = answer.get("code") if isinstance(answer, dict) else None
            assert not (status == 404 and code == "not_found"), f"{method.upper()} {template}: no route"
            assert status != 405, f"{method.upper()} {template}: method not allowed"
            checked += 1
    assert checked >= 8


def test_submit_202_matches_task_schema(api_only, document):
    response = api_only.request("POST", "/v1/tasks", {"text": "hello", "metadata": {"k": "v"}})
    task = check_response(document, "/v1/tasks", "POST", response, 202)
    assert response[1]["location"] == f"/v1/tasks/{task['task_id']}"


def test_idempotent_replay_matches_task_schema(api_only, document):
    headers = {"Idempotency-Key": "openapi-replay"}
    api_only.request("POST", "/v1/tasks", {"text": "same"}, headers)
    response = api_only.request("POST", "/v1/tasks", {"text": "same"}, headers)
    check_response(document, "/v1/tasks", "POST", response, 202)
    assert response[1].get("idempotent-replayed") == "true"


def test_pending_task_matches_schema(api_only, document):
    task = submit(api_only, "pending")
    response = api_only.request("GET", f"/v1/tasks/{task['task_id']}?include=text")
    check_response(document, "/v1/tasks/{task_id}", "GET", response, 200)
    assert "retry-after" in response[1]


def test_completed_task_matches_schema(server, document):
    task = submit(server, {"text": "one two two", "params": {"stem": True, "language": "german"}})
    wait_for_status(server, task["task_id"], "COMPLETED")
    response = server.request("GET", f"/v1/tasks/{task['task_id']}")
    body = check_response(document, "/v1/tasks/{task_id}", "GET", response, 200)
    assert body["result"] is not None


def test_failed_task_matches_schema(server, document):
    task = submit(server, {"text": "x", "params": {"fail_permanently": True}})
    wait_for_status(server, task["task_id"], "FAILED")
    response = server.request("GET", f"/v1/tasks/{task['task_id']}")
    body = check_response(document, "/v1/tasks/{task_id}", "GET", response, 200)
    assert body["error"] is not None


def test_list_page_matches_schema(api_only, document):
    for text in ("a", "b", "c"):
        submit(api_only, text)
    response = api_only.request("GET", "/v1/tasks?limit=2&status=PENDING")
    page = check_response(document, "/v1/tasks", "GET", response, 200)
    assert page["next_cursor"] is not None


def test_cancel_and_retry_match_schema(api_only, document):
    task = submit(api_only, "cancel then retry")
    cancelled = api_only.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
    check_response(document, "/v1/tasks/{task_id}/cancel", "POST", cancelled, 200)
    retried = api_only.request("POST", f"/v1/tasks/{task['task_id']}/retry")
    check_response(document, "/v1/tasks/{task_id}/retry", "POST", retried, 200)
    assert retried[1].get("retry-after") == "1"


def test_operations_endpoints_match_schema(server, document):
    check_response(document, "/healthz", "GET", server.request("GET", "/healthz"), 200)
    check_response(document, "/readyz", "GET", server.request("GET", "/readyz"), 200)
    check_response(document, "/openapi.json", "GET", server.request("GET", "/openapi.json"), 200)


@pytest.mark.parametrize(
    ("method", "path", "body", "template"),
    [
        ("POST", "/v1/tasks", "{", "/v1/tasks"),
        ("GET", "/v1/tasks?limit=0", None, "/v1/tasks"),
        ("GET", "/v1/tasks?cursor=forged", None, "/v1/tasks"),
        ("GET", "/v1/tasks/not-a-uuid", None, "/v1/tasks/{task_id}"),
        ("POST", "/v1/tasks/not-a-uuid/cancel", None, "/v1/tasks/{task_id}/cancel"),
        ("POST", "/v1/tasks/not-a-uuid/retry", None, "/v1/tasks/{task_id}/retry"),
        ("GET", "/healthz?a=1&a=2", None, "/healthz"),
        # The name decodes to a byte that is not UTF-8; the detail that
        # quotes it must still be valid JSON.
        ("GET", "/v1/tasks?cr%EAated_after=1", None, "/v1/tasks"),
    ],
)
def test_400_matches_problem_schema(api_only, document, method, path, body, template):
    response = api_only.request(method, path, body)
    check_response(document, template, method, response, 400)


def test_invalid_idempotency_key_matches_schema(api_only, document):
    response = api_only.request("POST", "/v1/tasks", {"text": "x"}, {"Idempotency-Key": "\u00e9"})
    body = check_response(document, "/v1/tasks", "POST", response, 400)
    assert body["code"] == "invalid_idempotency_key"


@pytest.mark.parametrize(
    ("method", "suffix", "template"),
    [
        ("GET", "", "/v1/tasks/{task_id}"),
        ("POST", "/cancel", "/v1/tasks/{task_id}/cancel"),
        ("POST", "/retry", "/v1/tasks/{task_id}/retry"),
    ],
)
def test_404_matches_problem_schema(api_only, document, method, suffix, template):
    response = api_only.request(method, f"/v1/tasks/{unused_task_id()}{suffix}")
    body = check_response(document, template, method, response, 404)
    assert body["code"] == "task_not_found"


@pytest.mark.parametrize(
    ("method", "path", "template", "documented_method"),
    [
        ("PUT", "/v1/tasks", "/v1/tasks", "GET"),
        ("DELETE", "/v1/tasks/{id}", "/v1/tasks/{task_id}", "GET"),
        ("GET", "/v1/tasks/{id}/cancel", "/v1/tasks/{task_id}/cancel", "POST"),
        ("GET", "/v1/tasks/{id}/retry", "/v1/tasks/{task_id}/retry", "POST"),
        ("POST", "/healthz", "/healthz", "GET"),
        ("POST", "/readyz", "/readyz", "GET"),
        ("POST", "/openapi.json", "/openapi.json", "GET"),
    ],
)
def test_405_matches_problem_schema(api_only, document, method, path, template, documented_method):
    response = api_only.request(method, path.replace("{id}", unused_task_id()))
    # The document lists 405 under each operation of a path, because
    # OpenAPI has no responses per path.
    check_response(document, template, documented_method, response, 405)
    assert response[1]["allow"]


def test_409_cancel_matches_problem_schema(server, document):
    task = submit(server, "finish me")
    wait_for_status(server, task["task_id"], "COMPLETED")
    response = server.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
    body = check_response(document, "/v1/tasks/{task_id}/cancel", "POST", response, 409)
    assert body["code"] == "task_not_cancellable"


def test_409_retry_matches_problem_schema(api_only, document):
    task = submit(api_only, "still pending")
    response = api_only.request("POST", f"/v1/tasks/{task['task_id']}/retry")
    body = check_response(document, "/v1/tasks/{task_id}/retry", "POST", response, 409)
    assert body["code"] == "task_not_retryable"


def test_413_matches_problem_schema(start_server, document):
    small = start_server("api", "--max-text-bytes", "16")
    response = small.request("POST", "/v1/tasks", {"text": "x" * 17})
    body = check_response(document, "/v1/tasks", "POST", response, 413)
    assert body["code"] == "payload_too_large"


def test_415_matches_problem_schema(api_only, document):
    response = api_only.request("POST", "/v1/tasks", "{}", {"Content-Type": "text/plain"})
    body = check_response(document, "/v1/tasks", "POST", response, 415)
    assert body["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"text": "x", "bogus": 1}, "validation_failed"),
        ({"text": "x", "params": {"top_n": 0}}, "validation_failed"),
        ({"text": "x", "type": "image.resize"}, "unknown_task_type"),
    ],
)
def test_422_matches_problem_schema(api_only, document, body, code):
    response = api_only.request("POST", "/v1/tasks", body)
    problem = check_response(document, "/v1/tasks", "POST", response, 422)
    assert problem["code"] == code


def test_422_key_reused_matches_problem_schema(api_only, document):
    headers = {"Idempotency-Key": "openapi-reuse"}
    api_only.request("POST", "/v1/tasks", {"text": "first"}, headers)
    response = api_only.request("POST", "/v1/tasks", {"text": "second"}, headers)
    problem = check_response(document, "/v1/tasks", "POST", response, 422)
    assert problem["code"] == "idempotency_key_reused"


def test_schema_check_rejects_wrong_body(server, document):
    # The schemas are strict enough to catch a drifting body: a task with an
    # extra member fails.
    task = submit(server, "strict")
    body = get_task(server, task["task_id"])
    body["unexpected"] = True
    resolver = jsonschema.RefResolver.from_schema(document)
    validator = jsonschema.Draft202012Validator({"$ref": "#/components/schemas/Task"}, resolver=resolver)
    assert not validator.is_valid(body)
