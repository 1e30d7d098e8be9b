"""API keys, tenants and the limits that protect the server.

Every keys file here is written by `conveyor keys add`. Servers run as
`api` without workers where a test needs tasks to stay PENDING.
"""

import concurrent.futures
import json
import os
import select
import socket
import stat
import subprocess
import time

import pytest

from conftest import BINARY, hermetic_environment, wait_until
from problems import assert_problem, unused_task_id

COMMAND_TIMEOUT_S = 30
KEY_PREFIX = "cvk_"


def add_key(path, tenant):
    """Run `conveyor keys add` and return the key it prints."""
    completed = subprocess.run(
        [BINARY, "keys", "add", "--tenant", tenant, "--api-keys-file", str(path)],
        env=hermetic_environment(None),
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert completed.returncode == 0, completed
    key = completed.stdout.decode("ascii").strip()
    assert key.startswith(KEY_PREFIX), f"not a key: {key!r}"
    return key


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys_file(tmp_path):
    """A keys file with one key for tenant alpha and one for tenant beta."""
    path = tmp_path / "api-keys"
    keys = {"alpha": add_key(path, "alpha"), "beta": add_key(path, "beta")}
    return path, keys


@pytest.fixture
def authed(start_server, keys_file):
    """An api process (no workers, so tasks stay PENDING) with the keys file."""
    path, keys = keys_file
    server = start_server("api", "--api-keys-file", str(path), "--log-level", "debug")
    return server, keys


def submit_as(server, key, body, headers=None):
    response = server.request("POST", "/v1/tasks", body, {**bearer(key), **(headers or {})})
    assert response[0] == 202, f"submit returned {response[0]}: {response[2]!r}"
    return response[2]


def retry_after_seconds(headers):
    value = headers.get("retry-after", "")
    assert value.isdigit(), f"Retry-After is not whole seconds: {value!r}"
    return int(value)


# The keys command


def test_keys_add_stores_only_a_hash(keys_file):
    path, keys = keys_file
    content = path.read_text()
    entries = [line.split() for line in content.splitlines() if line and not line.startswith("#")]

    assert len(entries) == 2
    assert [entry[1] for entry in entries] == ["alpha", "beta"]
    for key in keys.values():
        assert key not in content
        assert key[len(KEY_PREFIX) + 17 :] not in content, "the secret part must not be stored"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_keys_add_rejects_invalid_tenant(tmp_path):
    completed = subprocess.run(
        [BINARY, "keys", "add", "--tenant", "two words", "--api-keys-file", str(tmp_path / "k")],
        env=hermetic_environment(None),
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
    )

    assert completed.returncode == 2, completed
    assert b"--tenant" in completed.stderr
    assert not (tmp_path / "k").exists()


def test_keys_add_rejects_a_broken_file(tmp_path):
    path = tmp_path / "api-keys"
    path.write_text("not a key line\n")

    completed = subprocess.run(
        [BINARY, "keys", "add", "--tenant", "alpha", "--api-keys-file", str(path)],
        env=hermetic_environment(None),
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
    )

    assert completed.returncode == 1, completed
    assert b"line 1" in completed.stderr
    assert path.read_text() == "not a key line\n"


def test_server_with_broken_keys_file_does_not_start(tmp_path, new_database):
    path = tmp_path / "api-keys"
    path.write_text("0123456789abcdef alpha tooshort\n")

    completed = subprocess.run(
        [BINARY, "api", "--listen", "127.0.0.1:0", "--database", new_database(),
         "--log-format", "json", "--api-keys-file", str(path)],
        env=hermetic_environment(None),
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
    )

    assert completed.returncode == 1, completed
    assert b"line 1" in completed.stderr


# Authentication


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWxwaGE6c2VjcmV0",
        "Bearer not-a-key",
        "Bearer cvk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
    ids=["missing", "empty", "no-token", "blank-token", "basic", "malformed", "unknown"],
)
@pytest.mark.parametrize("path", ["/v1/tasks", f"/v1/tasks/{unused_task_id()}", "/v1/nothing"])
def test_request_without_valid_key_is_401(authed, authorization, path):
    server, _ = authed

    response = server.request("GET", path, headers={"Authorization": authorization})

    assert_problem(response, 401, "unauthorized")
    assert response[1].get("www-authenticate", "").startswith("Bearer")


def test_wrong_secret_of_a_known_key_is_401(authed):
    server, keys = authed
    key = keys["alpha"]
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")

    response = server.request("GET", "/v1/tasks", headers=bearer(wrong))

    assert_problem(response, 401, "unauthorized")
    assert response[1].get("www-authenticate", "").startswith("Bearer")


def test_submit_without_key_creates_nothing(authed):
    server, keys = authed

    response = server.request("POST", "/v1/tasks", {"text": "no key"})

    assert_problem(response, 401, "unauthorized")
    status, _, page = server.request("GET", "/v1/tasks", headers=bearer(keys["alpha"]))
    assert status == 200
    assert page["items"] == []


def test_valid_key_is_accepted_in_any_scheme_case(authed):
    server, keys = authed

    status, _, _ = server.request("GET", "/v1/tasks", headers={"Authorization": f"bearer {keys['alpha']}"})

    assert status == 200


def test_operations_endpoints_need_no_key(authed):
    server, _ = authed

    assert server.request("GET", "/healthz")[0] == 200
    assert server.request("GET", "/readyz")[0] == 200


def test_startup_log_states_authentication_on(authed):
    server, _ = authed

    def logged():
        records = [json.loads(line) for line in server.log_lines()]
        return [record for record in records if "authentication is on" in record.get("msg", "")]

    records = wait_until(logged, 10, f"no start-up line says authentication is on:\n{server.log_tail()}")
    assert records[0].get("tenants") in (2, "2"), records[0]


# Tenants


def test_tenant_cannot_reach_another_tenants_task(authed):
    server, keys = authed
    task = submit_as(server, keys["alpha"], {"text": "belongs to alpha"})
    task_id = task["task_id"]
    as_beta = bearer(keys["beta"])

    missing = server.request("GET", f"/v1/tasks/{unused_task_id()}", headers=as_beta)
    read = server.request("GET", f"/v1/tasks/{task_id}", headers=as_beta)
    cancel = server.request("POST", f"/v1/tasks/{task_id}/cancel", headers=as_beta)
    retry = server.request("POST", f"/v1/tasks/{task_id}/retry", headers=as_beta)

    assert_problem(missing, 404, "task_not_found")
    for response in (read, cancel, retry):
        body = assert_problem(response, 404, "task_not_found")
        assert body["title"] == missing[2]["title"]
    status, _, own = server.request("GET", f"/v1/tasks/{task_id}", headers=bearer(keys["alpha"]))
    assert status == 200
    assert own["status"] == "PENDING", "beta's cancel must not have changed alpha's task"


def test_list_shows_only_own_tasks(authed):
    server, keys = authed
    alpha_ids = {submit_as(server, keys["alpha"], {"text": f"alpha {i}"})["task_id"] for i in range(3)}
    beta_ids = {submit_as(server, keys["beta"], {"text": f"beta {i}"})["task_id"] for i in range(2)}

    _, _, alpha_page = server.request("GET", "/v1/tasks?limit=100", headers=bearer(keys["alpha"]))
    _, _, beta_page = server.request("GET", "/v1/tasks?limit=100", headers=bearer(keys["beta"]))

    assert {item["task_id"] for item in alpha_page["items"]} == alpha_ids
    assert {item["task_id"] for item in beta_page["items"]} == beta_ids


def test_idempotency_keys_are_per_tenant(authed):
    server, keys = authed
    body = {"text": "same body, same key"}
    key_header = {"Idempotency-Key": "shared-key-1"}

    _, alpha_headers, alpha_task = server.request(
        "POST", "/v1/tasks", body, {**bearer(keys["alpha"]), **key_header})
    _, beta_headers, beta_task = server.request(
        "POST", "/v1/tasks", body, {**bearer(keys["beta"]), **key_header})
    _, replay_headers, replay_task = server.request(
        "POST", "/v1/tasks", body, {**bearer(keys["alpha"]), **key_header})

    assert alpha_task["task_id"] != beta_task["task_id"]
    assert "idempotent-replayed" not in alpha_headers
    assert "idempotent-replayed" not in beta_headers
    assert replay_task["task_id"] == alpha_task["task_id"]
    assert replay_headers.get("idempotent-replayed") == "true"


def test_client_commands_send_the_api_key(authed):
    server, keys = authed
    env = hermetic_environment({"CONVEYOR_SERVER": server.base_url})

    def run(*args):
        return subprocess.run([BINARY, *args], env=env, capture_output=True, timeout=COMMAND_TIMEOUT_S)

    without_key = run("list")
    with_key = run("submit", "from the client", "--api-key", keys["alpha"])

    assert without_key.returncode == 1, without_key
    assert json.loads(without_key.stderr)["code"] == "unauthorized"
    assert with_key.returncode == 0, with_key
    assert json.loads(with_key.stdout)["status"] == "PENDING"


def test_logs_never_hold_a_key_or_its_hash(authed, keys_file):
    server, keys = authed
    path, _ = keys_file
    submit_as(server, keys["alpha"], {"text": "logged request"})
    server.request("GET", "/v1/tasks", headers=bearer(keys["beta"][:-1] + "x"))
    unknown = "cvk_0123456789abcdef_QmVhcmVyVG9rZW5UaGF0SXNOb3RJblRoZUZpbGU"
    server.request("GET", "/v1/tasks", headers=bearer(unknown))
    stored = [line.split() for line in path.read_text().splitlines() if line and line[0] != "#"]
    secrets = [*keys.values(), unknown] + [entry[2] for entry in stored] + [entry[3] for entry in stored]

    log = "\n".join(server.log_lines())

    assert "request" in log, "the server logged no request lines"
    for secret in secrets:
        assert secret not in log


# Limits


def test_rate_limit_answers_429_with_retry_after(start_server, keys_file):
    path, keys = keys_file
    # One token every 10 s and a burst of 3: the fourth request in a row is
    # over the rate unless the first three took 10 s.
    server = start_server("api", "--api-keys-file", str(path), "--rate-limit", "0.1",
                          "--rate-burst", "3")
    as_alpha = bearer(keys["alpha"])

    statuses = [server.request("GET", "/v1/tasks", headers=as_alpha)[0] for _ in range(3)]
    limited = server.request("GET", "/v1/tasks", headers=as_alpha)
    other_tenant = server.request("GET", "/v1/tasks", headers=bearer(keys["beta"]))
    health = server.request("GET", "/healthz")

    assert statuses == [200, 200, 200]
    assert_problem(limited, 429, "rate_limited")
    assert retry_after_seconds(limited[1]) >= 1
    assert other_tenant[0] == 200, "each tenant has its own bucket"
    assert health[0] == 200, "operations endpoints are not rate limited"


def test_max_pending_answers_429(start_server, keys_file):
    path, keys = keys_file
    server = start_server("api", "--api-keys-file", str(path), "--max-pending", "2")
    first = submit_as(server, keys["alpha"], {"text": "one"})
    submit_as(server, keys["alpha"], {"text": "two"})

    rejected = server.request("POST", "/v1/tasks", {"text": "three"}, bearer(keys["alpha"]))
    other_tenant = server.request("POST", "/v1/tasks", {"text": "beta's"}, bearer(keys["beta"]))

    body = assert_problem(rejected, 429, "rate_limited")
    assert "pending" in body["detail"]
    assert retry_after_seconds(rejected[1]) >= 1
    assert other_tenant[0] == 202, "the bound is per tenant"
    _, _, page = server.request("GET", "/v1/tasks", headers=bearer(keys["alpha"]))
    assert len(page["items"]) == 2, "a rejected submission creates nothing"

    cancelled = server.request("POST", f"/v1/tasks/{first['task_id']}/cancel", headers=bearer(keys["alpha"]))
    assert cancelled[0] == 200

    def admitted():
        response = server.request("POST", "/v1/tasks", {"text": "after cancel"}, bearer(keys["alpha"]))
        return response[0] == 202

    wait_until(admitted, 15, "a tenant under its bound again must be admitted", interval=0.5)

    # Back at the bound: a retry would make a third PENDING task.
    retried = server.request("POST", f"/v1/tasks/{first['task_id']}/retry", headers=bearer(keys["alpha"]))
    body = assert_problem(retried, 429, "rate_limited")
    assert "pending" in body["detail"]
    _, _, task = server.request("GET", f"/v1/tasks/{first['task_id']}", headers=bearer(keys["alpha"]))
    assert task["status"] == "CANCELLED", "a rejected retry changes nothing"


@pytest.mark.parametrize("authorization", ["", "Bearer", "Basic YWxwaGE6c2VjcmV0"],
                         ids=["empty", "no-token", "basic"])
def test_challenge_without_bearer_token_has_no_error(authed, authorization):
    server, _ = authed

    response = server.request("GET", "/v1/tasks", headers={"Authorization": authorization})

    assert_problem(response, 401, "unauthorized")
    assert response[1].get("www-authenticate") == 'Bearer realm="conveyor"'


def test_max_pending_default_is_off_without_keys(start_server):
    server = start_server("api")

    def limit_fields():
        for line in server.log_lines():
            record = json.loads(line)
            if record.get("msg") == "limits":
                return record
        return None

    limits = wait_until(limit_fields, 10, f"no limits line:\n{server.log_tail()}")
    assert limits["max_pending"] in (0, "0")
    assert limits["rate_limit"] in (0, 0.0, "0")
    assert limits["max_waiting_per_tenant"] in (0, "0")


def slow_send(port, first, drip, interval_s, max_bytes):
    """Send `first` at once, then `drip` one byte per interval; returns seconds until the server closed, or None."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(first)
        for index in range(max_bytes):
            readable, _, _ = select.select([sock], [], [], interval_s)
            if readable:
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    return time.monotonic() - started
                if not data:
                    return time.monotonic() - started
                raise AssertionError(f"the server answered a request it never fully received: {data[:200]!r}")
            try:
                sock.sendall(drip[index % len(drip) : index % len(drip) + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
    return None


def test_slow_headers_are_cut_off_but_long_poll_is_not(start_server, keys_file):
    path, keys = keys_file
    server = start_server("api", "--api-keys-file", str(path), "--request-timeout", "2s")
    task = submit_as(server, keys["alpha"], {"text": "stays pending"})

    # One header byte every 100 ms for up to 8 s, four times the timeout.
    closed_after = slow_send(server.port, b"GET /healthz HTTP/1.1\r\n", b"X-Slow: abcdefgh\r\n", 0.1, 80)
    started = time.monotonic()
    status, _, body = server.request(
        "GET", f"/v1/tasks/{task['task_id']}?wait=4", headers=bearer(keys["alpha"]))
    waited = time.monotonic() - started

    assert closed_after is not None, "a client sending headers a byte at a time must be cut off"
    assert status == 200, "a long poll waits after its request was read, untimed"
    assert body["status"] == "PENDING"
    assert waited >= 3.5, "the long poll must have been held for its wait"


def test_slow_body_is_cut_off(start_server):
    server = start_server("api", "--request-timeout", "2s")
    head = (b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")

    closed_after = slow_send(server.port, head, b'{"text": "aaaaaaaa', 0.1, 80)

    assert closed_after is not None, "a client sending the body a byte at a time must be cut off"


def read_response_head(sock, timeout):
    """Return the first bytes the server sends within timeout, or b"" when it sends none."""
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return b""
    return sock.recv(4096)


def test_cap_evicts_longest_waiting(start_server):
    server = start_server("api", "--max-connections", "3")
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    time.sleep(0.05)
    one_byte = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    one_byte.sendall(b"G")
    time.sleep(0.05)
    kept_alive = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    newcomer = None
    try:
        kept_alive.sendall(request)
        first = read_response_head(kept_alive, 10)
        newcomer = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        newcomer.sendall(request)
        answer = read_response_head(newcomer, 10)
        silent_closed = closed_by_server(silent, 10)
        others_untouched = select.select([one_byte, kept_alive], [], [], 0.5)[0]
    finally:
        for sock in (silent, one_byte, kept_alive, newcomer):
            if sock is not None:
                sock.close()

    assert first.startswith(b"HTTP/1.1 200")
    assert answer.startswith(b"HTTP/1.1 200"), "a connection at the cap is served at once"
    assert silent_closed, "the connection that waited longest for a request is closed"
    assert others_untouched == [], "only one connection makes room"
    assert any("connection limit reached" in json.loads(line).get("msg", "") for line in server.log_lines())
    evicted = metric_value(server, "conveyor_http_connections_evicted_total")
    assert evicted >= 1


def test_cap_queues_when_all_busy(start_server):
    server = start_server("api", "--max-connections", "2")
    task = server.request("POST", "/v1/tasks", {"text": "stays pending"})[2]
    poll = f"GET /v1/tasks/{task['task_id']}?wait=5 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    polling = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
    waiting = None
    try:
        for sock in polling:
            sock.sendall(poll)
        # Time for the server to read both polls, so that both connections
        # are busy when the next one arrives.
        time.sleep(1.5)
        waiting = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        while_busy = read_response_head(waiting, 1.0)
        # The polls end after 5 s and their connections stay open, waiting
        # for a next request: the new connection takes the place of one.
        after_polls = read_response_head(waiting, 10)
        poll_answers = [read_response_head(sock, 10) for sock in polling]
    finally:
        for sock in polling + ([waiting] if waiting else []):
            sock.close()

    assert while_busy == b"", "no connection is closed while every one works on a request"
    assert after_polls.startswith(b"HTTP/1.1 200"), "it is served once a connection waits"
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in poll_answers)


def metric_value(server, name):
    """The value of an unlabelled sample in /metrics."""
    status, _, body = server.request("GET", "/metrics")
    assert status == 200
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    raise AssertionError(f"{name} is not in /metrics")


# Checks made on the header alone, before any body is read

LARGE_BODY_BYTES = 6_000_000
WRONG_KEY = "Bearer cvk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def post_header(path, length, *extra):
    """The header of a POST with a JSON body of `length` bytes; extra lines are str."""
    lines = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: application/json",
             f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_head(sock, timeout=10):
    """Read one response up to its empty line; returns (status, lower-case headers, rest)."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([sock], [], [], max(remaining, 0))
        assert readable, f"no response within {timeout}s; received {data[:200]!r}"
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a response; received {data[:200]!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers, rest


def closed_by_server(sock, timeout=10):
    """Read until the server closes the connection; returns whether it did within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], deadline - time.monotonic())
        if not readable:
            return False
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
    return False


@pytest.mark.parametrize("authorization", [None, WRONG_KEY], ids=["missing", "wrong"])
def test_expect_continue_without_valid_key_gets_401(authed, authorization):
    server, _ = authed
    extra = ["Expect: 100-continue"] + ([f"Authorization: {authorization}"] if authorization else [])

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post_header("/v1/tasks", LARGE_BODY_BYTES, *extra))
        status, headers, _ = read_head(sock)
        closed = closed_by_server(sock)

    assert status == 401, "the key is checked before 100 Continue is sent"
    assert headers.get("connection") == "close"
    assert headers.get("www-authenticate", "").startswith("Bearer")
    assert closed, "the server closes the connection rather than read the body"


@pytest.mark.parametrize("authorization", [None, WRONG_KEY], ids=["missing", "wrong"])
def test_body_without_valid_key_is_not_read(authed, authorization):
    server, _ = authed
    extra = [f"Authorization: {authorization}"] if authorization else []

    # Only the header is sent, so the response must come without the 6 MB body.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post_header("/v1/tasks", LARGE_BODY_BYTES, *extra))
        status, headers, _ = read_head(sock)
        closed = closed_by_server(sock)

    assert status == 401
    assert headers.get("connection") == "close"
    assert closed, "the server closes the connection rather than read the body"


def test_valid_key_gets_100_continue(authed):
    server, keys = authed
    body = json.dumps({"text": "sent after 100 Continue"}).encode()

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post_header("/v1/tasks", len(body), "Expect: 100-continue",
                                 f"Authorization: Bearer {keys['alpha']}"))
        interim, _, _ = read_head(sock)
        sock.sendall(body)
        final, _, _ = read_head(sock)

    assert interim == 100
    assert final == 202


def test_keyless_get_keeps_connection_open(authed):
    server, _ = authed

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n")
        first, headers, rest = read_head(sock)
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            rest += sock.recv(65536)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        second, _, _ = read_head(sock)

    assert first == 401
    assert headers.get("connection") != "close", "a request without a body leaves nothing unread"
    assert second == 200


def test_rate_limit_is_checked_before_the_body(start_server, keys_file):
    path, keys = keys_file
    server = start_server("api", "--api-keys-file", str(path), "--rate-limit", "0.1",
                          "--rate-burst", "1")
    assert server.request("GET", "/v1/tasks", headers=bearer(keys["alpha"]))[0] == 200

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post_header("/v1/tasks", LARGE_BODY_BYTES, "Expect: 100-continue",
                                 f"Authorization: Bearer {keys['alpha']}"))
        status, headers, _ = read_head(sock)

    assert status == 429, "the rate is checked before 100 Continue is sent"
    assert retry_after_seconds(headers) >= 1
    assert headers.get("connection") == "close"


@pytest.mark.parametrize(("path", "status"), [("/v1/nothing", 404), ("/healthz", 405)])
def test_route_and_method_are_checked_before_the_body(authed, path, status):
    server, keys = authed

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post_header(path, LARGE_BODY_BYTES, "Expect: 100-continue",
                                 f"Authorization: Bearer {keys['alpha']}"))
        got, headers, _ = read_head(sock)

    assert got == status
    assert headers.get("connection") == "close"


# Path variants


@pytest.mark.parametrize(
    "path",
    [
        f"//v1/tasks/{unused_task_id()}",
        "//x/v1/tasks",
        "//x/metrics",
        "/v1//tasks",
        "/v1/./tasks",
        "/v1/tasks/../tasks",
        "/V1/tasks",
        "/%76%31/tasks",
        "/nothing",
    ],
)
def test_path_variants_need_a_key(authed, path):
    server, keys = authed

    keyless = server.request("GET", path)
    with_key = server.request("GET", path, headers=bearer(keys["alpha"]))

    assert_problem(keyless, 401, "unauthorized")
    assert_problem(with_key, 404, "not_found")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_broken_query_on_operations_route_needs_no_key(authed, path):
    server, _ = authed

    assert_problem(server.request("GET", f"{path}?%zz"), 400, "invalid_parameter")
    assert_problem(server.request("GET", f"http://127.0.0.1:{server.port}{path}?%zz"), 400,
                   "invalid_parameter")


def test_unknown_query_on_operations_route_needs_no_key(authed):
    server, _ = authed

    assert_problem(server.request("GET", "/healthz?x=1"), 400, "invalid_parameter")


def test_v1_route_with_broken_query_needs_key(authed):
    server, keys = authed

    assert_problem(server.request("GET", "/v1/tasks?status=%zz"), 401, "unauthorized")
    assert_problem(server.request("GET", "/v1/tasks?status=%zz", headers=bearer(keys["alpha"])),
                   400, "invalid_parameter")


def test_operations_routes_in_absolute_form_need_no_key(authed):
    server, _ = authed

    assert server.request("GET", f"http://127.0.0.1:{server.port}/healthz")[0] == 200


# Long polls


def first_finished(futures, timeout):
    """Wait for the first of futures to finish; returns it and the others."""
    done, pending = concurrent.futures.wait(
        futures, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
    assert done, f"no request finished within {timeout}s"
    return next(iter(done)), list(pending)


def test_long_polls_over_tenant_bound_get_429(start_server, keys_file):
    path, keys = keys_file
    server = start_server("api", "--api-keys-file", str(path), "--max-waiting-per-tenant", "2")
    alpha, beta = bearer(keys["alpha"]), bearer(keys["beta"])
    held = submit_as(server, keys["alpha"], {"text": "held by long polls"})
    other = submit_as(server, keys["alpha"], {"text": "polled later"})
    beta_task = submit_as(server, keys["beta"], {"text": "beta's"})

    # Three long polls of 30 s against a bound of 2: whichever comes last
    # is rejected at once, and the other two wait.
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        polls = [pool.submit(server.request, "GET", f"/v1/tasks/{held['task_id']}?wait=30",
                             None, alpha) for _ in range(3)]
        rejected, waiting = first_finished(polls, 20)
        beta_poll = server.request("GET", f"/v1/tasks/{beta_task['task_id']}?wait=1", headers=beta)
        plain_get = server.request("GET", f"/v1/tasks/{other['task_id']}", headers=alpha)
        health = server.request("GET", "/healthz")
        cancelled = server.request("POST", f"/v1/tasks/{held['task_id']}/cancel", headers=alpha)
        finished = [poll.result(timeout=30) for poll in waiting]
    after = server.request("GET", f"/v1/tasks/{other['task_id']}?wait=1", headers=alpha)

    body = assert_problem(rejected.result(), 429, "rate_limited")
    assert "2 long polls" in body["detail"]
    assert retry_after_seconds(rejected.result()[1]) >= 1
    assert beta_poll[0] == 200, "the bound is per tenant"
    assert plain_get[0] == 200, "a request without wait is not bounded"
    assert health[0] == 200
    assert cancelled[0] == 200
    assert [response[2]["status"] for response in finished] == ["CANCELLED", "CANCELLED"]
    assert after[0] == 200, "a long poll that ends frees its place"


def test_waiting_long_polls_leave_connections_free(start_server):
    # Ten connections: at most nine may hold a waiting long poll.
    server = start_server("api", "--max-connections", "10")
    task = server.request("POST", "/v1/tasks", {"text": "stays pending"})[2]
    poll = f"/v1/tasks/{task['task_id']}?wait=30"

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        polls = [pool.submit(server.request, "GET", poll) for _ in range(10)]
        rejected, waiting = first_finished(polls, 20)
        # A read timeout well under the long polls' 30 s: /healthz must not
        # wait for one of them to end.
        health = server.request("GET", "/healthz", timeout=10)
        server.request("POST", f"/v1/tasks/{task['task_id']}/cancel")
        finished = [poll.result(timeout=30) for poll in waiting]

    body = assert_problem(rejected.result(), 429, "rate_limited")
    assert "9 waiting long polls" in body["detail"]
    assert health[0] == 200
    assert [response[0] for response in finished] == [200] * 9


def test_max_waiting_per_tenant_default_with_keys(authed):
    server, _ = authed

    def limit_fields():
        records = [json.loads(line) for line in server.log_lines()]
        return next((record for record in records if record.get("msg") == "limits"), None)

    limits = wait_until(limit_fields, 10, f"no limits line:\n{server.log_tail()}")
    assert limits["max_waiting_per_tenant"] in (1000, "1000")


def test_gone_long_poll_frees_place(start_server, keys_file):
    path, keys = keys_file
    server = start_server("api", "--api-keys-file", str(path), "--max-waiting-per-tenant", "1")
    alpha = bearer(keys["alpha"])
    task = submit_as(server, keys["alpha"], {"text": "stays pending"})
    target = f"/v1/tasks/{task['task_id']}?wait="
    request = (f"GET {target}30 HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {keys['alpha']}\r\n\r\n").encode()
    leaving = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    leaving.sendall(request)

    def first_poll_waits():
        # While that poll waits, the tenant's next one is over the bound of
        # 1. A probe that came first gets the place, and the 30 s poll its
        # 429: then the 30 s poll is sent again.
        nonlocal leaving
        if select.select([leaving], [], [], 0)[0]:
            leaving.close()
            leaving = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            leaving.sendall(request)
            return False
        return server.request("GET", target + "1", headers=alpha)[0] == 429

    held = wait_until(first_poll_waits, 20, "the first long poll never started waiting")
    leaving.close()
    started = time.monotonic()
    admitted = wait_until(lambda: server.request("GET", target + "1", headers=alpha)[0] == 200, 20,
                          "the gone client's long poll kept its place")
    freed_after = time.monotonic() - started

    assert held
    assert admitted
    assert freed_after < 10, "the place is freed when the client goes, not when its 30 s wait ends"


def test_long_poll_answers_when_the_client_stops_sending(start_server):
    server = start_server("api")
    task = server.request("POST", "/v1/tasks", {"text": "stays pending"})[2]
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(f"GET /v1/tasks/{task['task_id']}?wait=30 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.5)
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        status, _, rest = read_head(sock, 10)
        answered_after = time.monotonic() - started
    finally:
        sock.close()

    assert status == 200, "a client that closed its side still gets the task as it is"
    assert answered_after < 10, "the poll ends at the client's close, not after its 30 s wait"
    assert b"PENDING" in rest


@pytest.mark.parametrize("path", ["/v1/tasks", "/nothing"])
def test_huge_declared_body_without_key_is_401(authed, path):
    server, _ = authed
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(post_header(path, 7_000_000))
        status, headers, _ = read_head(sock)

    assert status == 401, "the key is checked before the body's size"
    assert headers.get("www-authenticate", "").startswith("Bearer")


def test_stalled_bodies_spare_healthz(start_server):
    server = start_server("api", "--max-connections", "4")
    # Each sends a header that promises a body and never sends it.
    stalled = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(4)]
    try:
        for sock in stalled:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        time.sleep(0.5)
        started = time.monotonic()
        status, _, _ = server.request("GET", "/healthz", timeout=10)
        answered_after = time.monotonic() - started
    finally:
        for sock in stalled:
            sock.close()

    assert status == 200
    assert answered_after < 5, "a connection waiting for a body makes room at the cap"


def test_tenant_body_bytes_bounded(start_server, keys_file):
    path, keys = keys_file
    server = start_server("api", "--api-keys-file", str(path), "--max-body-bytes-per-tenant", "1000")
    body = json.dumps({"text": "x" * 800}).encode()
    auth = f"Authorization: Bearer {keys['alpha']}"
    holding = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        holding.sendall(post_header("/v1/tasks", len(body), auth) + body[:10])
        time.sleep(0.5)
        over, headers, over_body = server.request(
            "POST", "/v1/tasks", {"text": "y" * 800}, bearer(keys["alpha"]))
        other_tenant = server.request("POST", "/v1/tasks", {"text": "z" * 800}, bearer(keys["beta"]))
        holding.sendall(body[10:])
        held_status, _, _ = read_head(holding)
    finally:
        holding.close()
    # The server frees the held body before it sends its response, so the
    # bytes are back by the time the client has read it.
    next_post = server.request("POST", "/v1/tasks", {"text": "y" * 800}, bearer(keys["alpha"]))

    assert over == 429
    assert over_body["code"] == "rate_limited"
    assert "1000 bytes" in over_body["detail"]
    assert retry_after_seconds(headers) >= 1
    assert other_tenant[0] == 202, "the bound is per tenant"
    assert held_status == 202, "the body that holds the bytes is still accepted"
    assert next_post[0] == 202, "bytes are given back before the body's response is sent"


def test_upload_outlasts_idle_connections(start_server):
    server = start_server("api", "--max-connections", "3")
    body = json.dumps({"text": "an upload in progress"}).encode()
    uploading = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    idle = []
    newcomer = None
    try:
        uploading.sendall(post_header("/v1/tasks", len(body)) + body[:5])
        time.sleep(0.2)
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
        time.sleep(0.2)
        newcomer = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        newcomer.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        health, _, _ = read_head(newcomer)
        idle_closed = closed_by_server(idle[0], 10)
        uploading.sendall(body[5:])
        upload_status, _, _ = read_head(uploading)
    finally:
        for sock in [uploading, *idle] + ([newcomer] if newcomer else []):
            sock.close()

    assert health == 200
    assert idle_closed, "an idle connection makes room before an upload does"
    assert upload_status == 202, "the upload that waited longest still completes"


def test_unread_responses_use_budget(start_server):
    server = start_server("api", "--max-body-bytes-per-tenant", "8000000")
    # Each escape is six bytes of JSON, so the text's response is about 6 MB.
    task = server.request("POST", "/v1/tasks", '{"text": "' + "\\u0001" * 1_000_000 + '"}')
    assert task[0] == 202, task
    path = f"/v1/tasks/{task[2]['task_id']}?include=text"
    unread = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    unread.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    unread.settimeout(30)
    try:
        unread.connect(("127.0.0.1", server.port))
        unread.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        # The first bytes of the response show that the server has reserved it.
        first = unread.recv(16, socket.MSG_PEEK)
        while_unread = server.request("GET", path)
    finally:
        unread.close()
    # Closing the connection ends the write, which gives the bytes back.
    after_close = wait_until(lambda: server.request("GET", path)[0] == 200, 20,
                             "the budget never came back after the connection closed")

    assert first.startswith(b"HTTP/1.1 200")
    assert while_unread[0] == 429
    assert while_unread[2]["code"] == "rate_limited"
    assert retry_after_seconds(while_unread[1]) >= 1
    assert after_close
