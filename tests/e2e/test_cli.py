"""The client commands of the conveyor binary against a running server."""

import concurrent.futures
import json
import queue
import socket
import subprocess
import threading
import time

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


# 429 responses: a waiting command retries its long polls, a submission does not.

RETRY_NOTE = "the server responded with HTTP 429 rate_limited; retrying in"


def add_key(path, tenant):
    """Run `conveyor keys add` and return the key it prints."""
    completed = subprocess.run(
        [BINARY, "keys", "add", "--tenant", tenant, "--api-keys-file", str(path)],
        env=hermetic_environment(None),
        capture_output=True,
        timeout=30,
    )
    assert completed.returncode == 0, completed
    return completed.stdout.decode("ascii").strip()


class RunningCli:
    """A client command running in the background, its stderr read line by line."""

    def __init__(self, server, *args):
        self.proc = subprocess.Popen(
            [BINARY, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=hermetic_environment({"CONVEYOR_SERVER": server.base_url}),
        )
        self.stderr_lines = queue.Queue()
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.put(line.decode("utf-8", errors="replace"))
        self.stderr_lines.put(None)

    def wait_for_stderr(self, text, timeout):
        """Return the first stderr line that contains text; fail after timeout seconds."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no stderr line with {text!r} within {timeout}s: {seen!r}"
            try:
                line = self.stderr_lines.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, f"the command ended without {text!r} on stderr: {seen!r}"
            seen.append(line)
            if text in line:
                return line

    def finish(self, timeout):
        """Wait for the command to end; returns (exit code, stdout)."""
        # The output is one task, far smaller than a pipe's buffer, so the
        # command never blocks on writing it.
        code = self.proc.wait(timeout=timeout)
        stdout = self.proc.stdout.read()
        self.reader.join(timeout=timeout)
        return code, stdout.decode("utf-8", errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def test_get_wait_retries_long_poll_over_bound(start_server):
    # No workers, so tasks stay PENDING until they are cancelled.
    server = start_server("api", "--max-waiting-per-tenant", "1")
    holding_task = submit(server, "held by a long poll")
    polled = submit(server, "polled by the command")
    hold_path = f"/v1/tasks/{holding_task['task_id']}?wait=60"

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # Two long polls against a bound of 1: the one that returns first was
        # turned away, so the other has taken the only place.
        polls = [pool.submit(server.request, "GET", hold_path) for _ in range(2)]
        done, _ = concurrent.futures.wait(
            polls, timeout=20, return_when=concurrent.futures.FIRST_COMPLETED)
        assert done, "neither long poll returned within 20 s"
        assert next(iter(done)).result()[0] == 429

        command = RunningCli(server, "get", polled["task_id"], "--wait")
        try:
            note = command.wait_for_stderr(RETRY_NOTE, timeout=20)
            # Ending the held poll frees its place for the command's retry.
            server.request("POST", f"/v1/tasks/{holding_task['task_id']}/cancel")
            server.request("POST", f"/v1/tasks/{polled['task_id']}/cancel")
            code, stdout = command.finish(timeout=60)
        finally:
            command.kill()

    assert "retrying in 1 s" in note
    assert code == 0, stdout
    task = json.loads(stdout)
    assert task["task_id"] == polled["task_id"]
    assert task["status"] == "CANCELLED"


def test_submit_wait_retries_rate_limited_poll(start_server, tmp_path):
    keys_path = tmp_path / "api-keys"
    key = add_key(keys_path, "alpha")
    # The submission takes the only token, so the first long poll, sent at
    # once, is over the rate: a token comes back every 5 s.
    server = start_server("serve", "--simulated-delay", "0", "--api-keys-file", str(keys_path),
                          "--rate-limit", "0.2", "--rate-burst", "1")

    command = RunningCli(server, "submit", "The cat and the hat.", "--wait", "--api-key", key)
    try:
        note = command.wait_for_stderr(RETRY_NOTE, timeout=20)
        code, stdout = command.finish(timeout=60)
    finally:
        command.kill()

    assert "conveyor submit" in note
    assert code == 0, stdout
    task = json.loads(stdout)
    assert task["status"] == "COMPLETED"
    assert task["result"]["word_count"] == 5


def test_submit_over_rate_is_not_retried(start_server):
    server = start_server("api", "--rate-limit", "0.01", "--rate-burst", "1")

    first = run_cli("submit", "takes the only token", server=server)
    second = run_cli("submit", "over the rate", server=server)

    assert first.code == 0, first
    assert second.code == 1, second
    assert second.problem()["code"] == "rate_limited"
    assert RETRY_NOTE not in second.stderr
