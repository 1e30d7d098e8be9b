"""Idempotency-Key: replays, conflicting bodies and concurrent duplicates."""

import concurrent.futures
import json
import threading

from conftest import list_all, submit, wait_for_status
from problems import assert_problem

BODY = {
    "text": "Idempotent text about queues.",
    "params": {"top_n": 3, "stem": False},
    "max_attempts": 4,
    "metadata": {"customer": "acme", "order": "17"},
}


def post_with_key(server, body, key):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    return server.request("POST", "/v1/tasks", body, {"Idempotency-Key": key})


def test_replay_returns_same_task(server):
    status, headers, first = post_with_key(server, BODY, "key-replay")
    assert status == 202, first
    assert headers.get("idempotent-replayed", "false").lower() != "true"

    status, headers, second = post_with_key(server, BODY, "key-replay")
    assert status == 202, second
    assert second["task_id"] == first["task_id"]
    assert headers.get("idempotent-replayed") == "true"
    assert headers.get("location") == f"/v1/tasks/{first['task_id']}"
    assert len(list_all(server)) == 1


def test_replay_returns_current_representation(server):
    _, _, first = post_with_key(server, BODY, "key-current")
    wait_for_status(server, first["task_id"], "COMPLETED")
    status, headers, replay = post_with_key(server, BODY, "key-current")
    assert status == 202
    assert headers.get("idempotent-replayed") == "true"
    assert replay["status"] == "COMPLETED"
    assert replay["result"] is not None


def test_reformatted_body_is_replay(server):
    _, _, first = post_with_key(server, BODY, "key-format")
    reordered = {
        "metadata": {"order": "17", "customer": "acme"},
        "max_attempts": 4,
        "params": {"stem": False, "top_n": 3},
        "text": "Idempotent text about queues.",
    }
    reformatted = json.dumps(reordered, indent=4, ensure_ascii=True).encode()
    status, headers, second = post_with_key(server, reformatted, "key-format")
    assert status == 202, second
    assert second["task_id"] == first["task_id"]
    assert headers.get("idempotent-replayed") == "true"


def test_escaped_string_is_same_body(server):
    _, _, first = post_with_key(server, {"text": "caf\u00e9 a"}, "key-escape")
    escaped = b'{ "text" : "caf\\u00e9 \\u0061" }'
    status, headers, second = post_with_key(server, escaped, "key-escape")
    assert status == 202, second
    assert second["task_id"] == first["task_id"]
    assert headers.get("idempotent-replayed") == "true"


def test_different_body_is_idempotency_key_reused(server):
    _, _, first = post_with_key(server, BODY, "key-conflict")
    changed = dict(BODY, text="Another text entirely.")
    assert_problem(post_with_key(server, changed, "key-conflict"), 422, "idempotency_key_reused")
    tasks = list_all(server)
    assert [task["task_id"] for task in tasks] == [first["task_id"]]


def test_changed_param_is_idempotency_key_reused(server):
    post_with_key(server, BODY, "key-param")
    changed = dict(BODY, params={"top_n": 4, "stem": False})
    assert_problem(post_with_key(server, changed, "key-param"), 422, "idempotency_key_reused")


def test_added_member_is_idempotency_key_reused(server):
    body = {"text": "base"}
    post_with_key(server, body, "key-added")
    changed = {"text": "base", "max_attempts": 3}
    assert_problem(post_with_key(server, changed, "key-added"), 422, "idempotency_key_reused")


def test_conflict_leaves_task_unchanged(server):
    _, _, first = post_with_key(server, {"text": "original", "metadata": {"a": "1"}}, "key-same")
    post_with_key(server, {"text": "replacement", "metadata": {"a": "2"}}, "key-same")
    status, _, task = server.request("GET", f"/v1/tasks/{first['task_id']}?include=text")
    assert status == 200
    assert task["text"] == "original"
    assert task["metadata"] == {"a": "1"}


def test_different_keys_create_different_tasks(server):
    _, _, first = post_with_key(server, BODY, "key-one")
    _, _, second = post_with_key(server, BODY, "key-two")
    assert first["task_id"] != second["task_id"]


def test_keys_are_case_sensitive(server):
    _, _, lower = post_with_key(server, BODY, "key-case")
    status, _, upper = post_with_key(server, BODY, "KEY-CASE")
    assert status == 202
    assert lower["task_id"] != upper["task_id"]


def test_requests_without_key_are_not_deduplicated(server):
    first = submit(server, BODY)
    second = submit(server, BODY)
    assert first["task_id"] != second["task_id"]


def test_concurrent_duplicates_create_one_task(server):
    count = 50
    barrier = threading.Barrier(count, timeout=30)

    def send(_):
        barrier.wait()
        return post_with_key(server, BODY, "key-concurrent")

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        responses = list(pool.map(send, range(count)))

    statuses = [status for status, _, _ in responses]
    failures = [body for status, _, body in responses if status != 202]
    assert statuses == [202] * count, f"answers other than 202: {failures[:3]!r}"
    ids = {body["task_id"] for _, _, body in responses}
    assert len(ids) == 1, f"{len(ids)} distinct task ids"
    replayed = [headers.get("idempotent-replayed") == "true" for _, headers, _ in responses]
    assert replayed.count(False) == 1, f"{replayed.count(False)} answers were not replays"
    assert [task["task_id"] for task in list_all(server)] == list(ids)


def test_concurrent_conflicting_bodies_create_one_task(server):
    count = 20
    barrier = threading.Barrier(count, timeout=30)

    def send(index):
        barrier.wait()
        return post_with_key(server, {"text": f"body {index % 2}"}, "key-race")

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        responses = list(pool.map(send, range(count)))

    accepted = [body for status, _, body in responses if status == 202]
    rejected = [body for status, _, body in responses if status != 202]
    assert accepted, f"no request was accepted: {rejected[:3]!r}"
    assert {body["task_id"] for body in accepted} == {accepted[0]["task_id"]}
    for body in rejected:
        assert body.get("code") == "idempotency_key_reused", body
    assert len(list_all(server)) == 1


def test_key_survives_restart(start_server):
    first_server = start_server("serve", "--simulated-delay", "0")
    _, _, first = post_with_key(first_server, BODY, "key-durable")
    assert first_server.terminate() == 0
    second_server = start_server("serve", "--simulated-delay", "0", database=first_server.database)
    status, headers, replay = post_with_key(second_server, BODY, "key-durable")
    assert status == 202, replay
    assert replay["task_id"] == first["task_id"]
    assert headers.get("idempotent-replayed") == "true"
