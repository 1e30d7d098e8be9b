"""The client commands of the conveyor binary against a running server."""

import json
import socket
import subprocess

import pytest

from conftest import BINARY, get_task, hermetic_environment, submit, wait_for_status
from problems import unused_task_id


class CliResult:
    def __init__(self, completed):
        self.code = completed.returncode
        self.stdout = completed.stdout.decode("utf-8", errors="replace")
        self.stderr = completed.stderr.decode("utf-8", errors="replace")

    def json(self):
        try:
            return json.loads(self.stdout)
        except ValueError as error:
            raise AssertionError(f"stdout is not JSON ({error}): {self.stdout!r}") from None

    def problem(self):
        try:
            return json.loads(self.stderr)
        except ValueError as error:
            raise AssertionError(f"stderr is not problem JSON ({error}): {self.stderr!r}") from None

    def __repr__(self):
        return f"exit {self.code}; stdout {self.stdout[:2000]!r}; stderr {self.stderr[:2000]!r}"


def run_cli(*args, server=None, server_url=None, stdin=None, timeout=60):
    """Run one client command; CONVEYOR_SERVER points at server or server_url."""
    env = {}
    if server is not None:
        env["CONVEYOR_SERVER"] = server.base_url
    if server_url is not None:
        env["CONVEYOR_SERVER"] = server_url
    completed = subprocess.run(
        [BINARY, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env=hermetic_environment(env),
        timeout=timeout,
    )
    return CliResult(completed)


def items_of(document):
    """Return the tasks of a list command's output: a page or a bare list."""
    if isinstance(document, dict):
        assert "items" in document, document
        return document["items"]
    assert isinstance(document, list), document
    return document


@pytest.fixture
def closed_port_url():
    """A URL on a loopback port that was bound and closed, so nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_submit_prints_task(server):
    result = run_cli("submit", "The cat and the hat.", server=server)
    assert result.code == 0, result
    task = result.json()
    assert task["status"] in ("PENDING", "PROCESSING", "COMPLETED")
    assert task["text_bytes"] == len("The cat and the hat.")
    assert get_task(server, task["task_id"])["task_id"] == task["task_id"]


def test_submit_wait_prints_terminal_task(server):
    result = run_cli("submit", "The cat and the hat.", "--wait", server=server)
    assert result.code == 0, result
    task = result.json()
    assert task["status"] == "COMPLETED"
    assert task["result"] == {
        "word_count": 5,
        "unique_words": 4,
        "top_words": [{"word": "cat", "count": 1}, {"word": "hat", "count": 1}],
    }


def test_submit_file(server, tmp_path):
    path = tmp_path / "input.txt"
    path.write_text("Stra\u00dfe STRASSE stra\u00dfe\n", encoding="utf-8")
    result = run_cli("submit", "--file", str(path), "--wait", server=server)
    assert result.code == 0, result
    task = result.json()
    assert task["text_bytes"] == len(path.read_bytes())
    assert task["result"]["top_words"] == [{"word": "strasse", "count": 3}]


def test_submit_file_from_stdin(server):
    text = "Don\u2019t stop, DON'T stop!"
    result = run_cli("submit", "--file", "-", "--wait", server=server, stdin=text.encode("utf-8"))
    assert result.code == 0, result
    task = result.json()
    assert task["result"]["top_words"] == [{"word": "stop", "count": 2}]
    fetched = get_task(server, task["task_id"], "?include=text")
    assert fetched["text"] == text


def test_submit_params_are_typed(server):
    result = run_cli(
        "submit", "words words", "--param", "top_n=3", "--param", "stem=true",
        "--param", "language=german", server=server,
    )
    assert result.code == 0, result
    assert result.json()["params"] == {"top_n": 3, "language": "german", "stem": True}


def test_submit_idempotency_key_replays(server):
    first = run_cli("submit", "once", "--idempotency-key", "cli-key", server=server)
    second = run_cli("submit", "once", "--idempotency-key", "cli-key", server=server)
    assert first.code == 0, first
    assert second.code == 0, second
    assert second.json()["task_id"] == first.json()["task_id"]


def test_submit_reused_key_exits_1(server):
    run_cli("submit", "first body", "--idempotency-key", "cli-conflict", server=server)
    result = run_cli("submit", "second body", "--idempotency-key", "cli-conflict", server=server)
    assert result.code == 1, result
    assert result.problem()["code"] == "idempotency_key_reused"


def test_submit_invalid_param_exits_1(server):
    result = run_cli("submit", "text", "--param", "top_n=0", server=server)
    assert result.code == 1, result
    problem = result.problem()
    assert problem["code"] == "validation_failed"
    assert problem["status"] == 422
    assert result.stdout.strip() == ""


def test_server_flag_beats_environment(server, closed_port_url):
    result = run_cli("get", submit(server, "flag")["task_id"], "--server", server.base_url,
                     server_url=closed_port_url)
    assert result.code == 0, result


def test_get_prints_task(server):
    task = submit(server, "get me")
    result = run_cli("get", task["task_id"], server=server)
    assert result.code == 0, result
    assert result.json()["task_id"] == task["task_id"]


def test_get_wait_prints_terminal_task(server):
    task = submit(server, {"text": "soon", "params": {"delay_ms": 500}})
    result = run_cli("get", task["task_id"], "--wait", server=server)
    assert result.code == 0, result
    assert result.json()["status"] == "COMPLETED"


def test_get_unknown_task_exits_1(server):
    result = run_cli("get", unused_task_id(), server=server)
    assert result.code == 1, result
    problem = result.problem()
    assert problem["code"] == "task_not_found"
    assert problem["status"] == 404


def test_list_prints_tasks(server):
    ids = {submit(server, f"listed {index}")["task_id"] for index in range(3)}
    result = run_cli("list", server=server)
    assert result.code == 0, result
    assert {item["task_id"] for item in items_of(result.json())} == ids


def test_list_limit(server):
    for index in range(5):
        submit(server, f"limited {index}")
    result = run_cli("list", "--limit", "2", server=server)
    assert result.code == 0, result
    assert len(items_of(result.json())) == 2


def test_list_all_walks_every_page(server):
    ids = {submit(server, f"paged {index}")["task_id"] for index in range(45)}
    result = run_cli("list", "--all", "--limit", "10", server=server)
    assert result.code == 0, result
    items = items_of(result.json())
    assert len(items) == 45
    assert {item["task_id"] for item in items} == ids


def test_list_status_filter(server):
    failed = submit(server, {"text": "bad", "params": {"fail_permanently": True}})
    fine = submit(server, "fine")
    wait_for_status(server, failed["task_id"], "FAILED")
    wait_for_status(server, fine["task_id"], "COMPLETED")
    result = run_cli("list", "--status", "FAILED", server=server)
    assert result.code == 0, result
    assert [item["task_id"] for item in items_of(result.json())] == [failed["task_id"]]


def test_list_type_filter(server):
    task = submit(server, "typed")
    result = run_cli("list", "--type", "text.analyze", server=server)
    assert result.code == 0, result
    assert [item["task_id"] for item in items_of(result.json())] == [task["task_id"]]


def test_list_bad_status_exits_1(server):
    result = run_cli("list", "--status", "DONE", server=server)
    assert result.code == 1, result
    assert result.problem()["code"] == "invalid_parameter"


def test_cancel_prints_cancelled_task(server):
    task = submit(server, {"text": "slow", "params": {"delay_ms": 600000}})
    result = run_cli("cancel", task["task_id"], server=server)
    assert result.code == 0, result
    assert result.json()["status"] == "CANCELLED"


def test_cancel_completed_exits_1(server):
    task = submit(server, "done")
    wait_for_status(server, task["task_id"], "COMPLETED")
    result = run_cli("cancel", task["task_id"], server=server)
    assert result.code == 1, result
    assert result.problem()["code"] == "task_not_cancellable"


def test_retry_prints_pending_task(server):
    task = submit(server, {"text": "bad", "params": {"fail_permanently": True}})
    wait_for_status(server, task["task_id"], "FAILED")
    result = run_cli("retry", task["task_id"], server=server)
    assert result.code == 0, result
    body = result.json()
    assert body["status"] == "PENDING"
    assert body["attempts"] == 0


def test_retry_completed_exits_1(server):
    task = submit(server, "done")
    wait_for_status(server, task["task_id"], "COMPLETED")
    result = run_cli("retry", task["task_id"], server=server)
    assert result.code == 1, result
    assert result.problem()["code"] == "task_not_retryable"


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        ("get",),
        ("cancel",),
        ("retry",),
        ("get", "a", "b"),
        ("list", "--limit", "ten"),
        ("list", "--bogus"),
        ("submit", "text", "--param", "no-equals-sign"),
        ("submit", "text", "--param", "=value"),
    ],
    ids=lambda args: " ".join(args),
)
def test_usage_error_exits_2(server, args):
    result = run_cli(*args, server=server)
    assert result.code == 2, result
    assert result.stdout.strip() == ""
    assert result.stderr.strip(), "a usage error printed nothing on stderr"


def test_usage_error_sends_nothing(server):
    run_cli("submit", "text", "--param", "no-equals-sign", server=server)
    status, _, page = server.request("GET", "/v1/tasks")
    assert status == 200
    assert page["items"] == []


@pytest.mark.parametrize(
    "args",
    [("submit", "text"), ("get", "{id}"), ("list",), ("cancel", "{id}"), ("retry", "{id}")],
    ids=lambda args: args[0],
)
def test_unreachable_server_exits_3(closed_port_url, args):
    task_id = unused_task_id()
    args = [arg.replace("{id}", task_id) for arg in args]
    result = run_cli(*args, server_url=closed_port_url)
    assert result.code == 3, result
    assert result.stdout.strip() == ""
    assert result.stderr.strip(), "an unreachable server printed nothing on stderr"
