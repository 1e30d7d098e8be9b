"""Keyset pagination of GET /v1/tasks: completeness, order, filters, bounds."""

import concurrent.futures
import threading
import time
from urllib.parse import quote

import pytest

from conftest import SANITIZED, list_all, submit, wait_for_status, wait_until
from problems import assert_problem, parse_timestamp


def sort_key(task):
    return (parse_timestamp(task["created_at"]), task["task_id"])


def submit_many(server, count, body=None):
    def one(index):
        return submit(server, body if body is not None else f"paged task {index}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def assert_ordered(items, order):
    keys = [sort_key(item) for item in items]
    expected = sorted(keys, reverse=(order == "desc"))
    assert keys == expected, f"items are not in {order} order of (created_at, task_id)"


def assert_unique(items):
    ids = [item["task_id"] for item in items]
    duplicates = {task_id for task_id in ids if ids.count(task_id) > 1}
    assert not duplicates, f"tasks listed more than once: {sorted(duplicates)[:5]}"


@pytest.fixture
def api_only(start_server):
    """An api process with no workers, so every task stays PENDING."""
    return start_server("api", "--enable-fault-injection")


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("limit", [1, 7, 100])
def test_walk_visits_every_task_once(api_only, order, limit):
    created = submit_many(api_only, 60)
    items = list_all(api_only, f"order={order}&limit={limit}")
    assert_unique(items)
    assert {item["task_id"] for item in items} == {task["task_id"] for task in created}
    assert_ordered(items, order)


def test_default_order_is_newest_first(api_only):
    submit_many(api_only, 25)
    default = list_all(api_only)
    ascending = list_all(api_only, "order=asc")
    assert [item["task_id"] for item in default] == [item["task_id"] for item in reversed(ascending)]


def test_default_limit_is_twenty(api_only):
    submit_many(api_only, 25)
    status, _, page = api_only.request("GET", "/v1/tasks")
    assert status == 200
    assert len(page["items"]) == 20
    assert page["next_cursor"] is not None


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(api_only, limit):
    submit_many(api_only, 105)
    status, _, page = api_only.request("GET", f"/v1/tasks?limit={limit}")
    assert status == 200
    assert len(page["items"]) == limit
    assert page["next_cursor"] is not None


@pytest.mark.parametrize("limit", ["0", "101", "1000"])
def test_limit_out_of_range_is_rejected(api_only, limit):
    assert_problem(api_only.request("GET", f"/v1/tasks?limit={limit}"), 400, "invalid_parameter")


def test_exact_last_page_has_null_cursor(api_only):
    submit_many(api_only, 10)
    status, _, first = api_only.request("GET", "/v1/tasks?limit=5")
    assert status == 200
    cursor = quote(first["next_cursor"], safe="")
    status, _, second = api_only.request("GET", f"/v1/tasks?limit=5&cursor={cursor}")
    assert status == 200
    assert len(second["items"]) == 5
    if second["next_cursor"] is not None:
        cursor = quote(second["next_cursor"], safe="")
        status, _, third = api_only.request("GET", f"/v1/tasks?limit=5&cursor={cursor}")
        assert status == 200
        assert third["items"] == []
        assert third["next_cursor"] is None


def test_empty_list_has_null_cursor(api_only):
    status, _, page = api_only.request("GET", "/v1/tasks")
    assert status == 200
    assert page == {"items": [], "next_cursor": None}


def make_mixed_statuses(server):
    """Create COMPLETED, FAILED and CANCELLED tasks; returns ids by status."""
    completed = submit_many(server, 12, {"text": "fine"})
    failed = submit_many(server, 9, {"text": "bad", "params": {"fail_permanently": True}})
    slow = submit_many(server, 7, {"text": "slow", "params": {"delay_ms": 600000}})
    for task in slow:
        status, _, body = server.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
        assert status == 200, body
    for task in completed:
        wait_for_status(server, task["task_id"], "COMPLETED")
    for task in failed:
        wait_for_status(server, task["task_id"], "FAILED")
    return {
        "COMPLETED": {task["task_id"] for task in completed},
        "FAILED": {task["task_id"] for task in failed},
        "CANCELLED": {task["task_id"] for task in slow},
    }


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_status_filter_walks_matching_tasks(server, order):
    ids = make_mixed_statuses(server)
    for status_name, expected in ids.items():
        items = list_all(server, f"status={status_name}&order={order}&limit=4")
        assert_unique(items)
        assert {item["task_id"] for item in items} == expected, status_name
        assert {item["status"] for item in items} == {status_name}
        assert_ordered(items, order)


def test_status_list_filter(server):
    ids = make_mixed_statuses(server)
    items = list_all(server, "status=FAILED,CANCELLED&limit=5")
    assert_unique(items)
    assert {item["task_id"] for item in items} == ids["FAILED"] | ids["CANCELLED"]


def test_type_filter(server):
    created = submit_many(server, 15)
    items = list_all(server, "type=text.analyze&limit=4&order=asc")
    assert_unique(items)
    assert {item["task_id"] for item in items} == {task["task_id"] for task in created}


def submit_spaced(server, count):
    """Submits `count` tasks 2 ms apart, so each gets a created_at (in whole
    milliseconds) of its own."""
    created = []
    for index in range(count):
        created.append(submit(server, f"bounded {index}"))
        time.sleep(0.002)
    return created


def test_created_bounds_are_exclusive(api_only):
    created = sorted(submit_spaced(api_only, 10), key=sort_key)
    # Exclusive bounds are observable only on a task whose created_at differs
    # from both neighbours' values.
    boundary = next(
        (
            index
            for index in range(1, len(created) - 1)
            if created[index - 1]["created_at"] < created[index]["created_at"] < created[index + 1]["created_at"]
        ),
        None,
    )
    assert boundary is not None, "10 tasks submitted 2 ms apart share created_at values"
    pivot = created[boundary]["created_at"]
    pivot_time = parse_timestamp(pivot)
    after = list_all(api_only, f"created_after={quote(pivot, safe='')}&order=asc")
    before = list_all(api_only, f"created_before={quote(pivot, safe='')}&order=asc")
    expected_after = {task["task_id"] for task in created if parse_timestamp(task["created_at"]) > pivot_time}
    expected_before = {task["task_id"] for task in created if parse_timestamp(task["created_at"]) < pivot_time}
    assert {item["task_id"] for item in after} == expected_after
    assert {item["task_id"] for item in before} == expected_before


def test_walk_while_tasks_are_created(start_server):
    server = start_server("serve", "--simulated-delay", "0..50ms", "--enable-fault-injection")
    existing = submit_many(server, 300)
    stop = threading.Event()
    created_during = []

    def keep_creating():
        for index in range(5000):
            if stop.is_set():
                return
            created_during.append(submit(server, f"concurrent {index}"))

    creator = threading.Thread(target=keep_creating, daemon=True)
    creator.start()
    try:
        wait_until(lambda: len(created_during) >= 5, 10, "the creator thread made no tasks")
        for order in ("asc", "desc"):
            created_before_walk = len(created_during)
            items = list_all(server, f"order={order}&limit=5")
            assert len(created_during) > created_before_walk, f"no task was created during the {order} walk"
            assert_unique(items)
            assert_ordered(items, order)
            listed = {item["task_id"] for item in items}
            missing = {task["task_id"] for task in existing} - listed
            assert not missing, f"{order} walk missed {len(missing)} tasks created before it"
    finally:
        stop.set()
        creator.join(timeout=30)


def test_filtered_walk_while_statuses_change(start_server):
    server = start_server("serve", "--simulated-delay", "0..300ms", "--enable-fault-injection")
    submit_many(server, 200)
    items = list_all(server, "status=PENDING,PROCESSING,COMPLETED&order=asc&limit=3")
    assert_unique(items)
    assert_ordered(items, "asc")
    assert len(items) == 200
    seen = {item["status"] for item in items}
    if seen == {"COMPLETED"} and SANITIZED:
        # Under the sanitizers the 200 submissions take longer than the
        # 300 ms of simulated work, so every task may finish before the walk.
        pytest.skip("every task had completed before the walk (sanitizer build)")
    assert seen - {"COMPLETED"}, "every task had completed before the walk, so no status changed during it"


def test_cursor_bound_to_query(api_only):
    submit_many(api_only, 5)
    status, _, page = api_only.request("GET", "/v1/tasks?limit=2&status=PENDING&order=asc")
    assert status == 200
    cursor = quote(page["next_cursor"], safe="")
    same = api_only.request("GET", f"/v1/tasks?limit=2&status=PENDING&order=asc&cursor={cursor}")
    assert same[0] == 200, same[2]
    for query in ("status=PENDING&order=desc", "status=FAILED&order=asc", "order=asc"):
        response = api_only.request("GET", f"/v1/tasks?limit=2&{query}&cursor={cursor}")
        assert_problem(response, 400, "invalid_cursor")
