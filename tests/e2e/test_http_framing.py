"""HTTP/1.1 framing: how the server reads requests that are odd or hostile.

These tests write raw bytes to a socket, because an HTTP client library
would refuse to send most of them.
"""

import json
import socket
import time

import pytest

from problems import assert_problem, unused_task_id

READ_TIMEOUT_S = 10.0


def exchange(server, raw, read_until_close=True):
    """Send raw bytes and return everything the server sends back."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT_S) as sock:
        sock.sendall(raw)
        chunks = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close:
                break
        return b"".join(chunks)


def split_responses(data):
    """Split a byte stream into (status, headers, body) by Content-Length."""
    responses = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        assert separator, f"incomplete response: {data[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        responses.append((status, headers, rest[:length]))
        data = rest[length:]
    return responses


def submit_with_fields(server, fields):
    """Send a small submission with the raw header `fields` added. Return its status and code."""
    raw = (
        b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + fields +
        b"Content-Length: 12\r\nConnection: close\r\n\r\n{\"text\":\"a\"}"
    )
    status, _, body = split_responses(exchange(server, raw))[0]
    return status, json.loads(body).get("code")


def test_head_answers_without_body(server):
    data = exchange(
        server,
        b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    head_end = data.index(b"\r\n\r\n") + 4
    head = data[:head_end].decode("latin-1")
    assert head.startswith("HTTP/1.1 200"), head
    assert "Content-Length: 15" in head, "HEAD keeps the Content-Length of GET"
    assert data[head_end:].startswith(b"HTTP/1.1 200"), "no body may follow a HEAD answer"


def test_head_is_listed_in_allow(server):
    status, headers, _ = server.request("DELETE", "/healthz")
    assert status == 405
    assert "HEAD" in headers["allow"]


def test_encoded_slash_is_not_a_separator(server):
    assert_problem(server.request("GET", "/v1%2Ftasks"), 404, "not_found")


def test_encoded_slash_in_id_is_invalid_task_id(server):
    path = f"/v1/tasks/{unused_task_id()}%2Fcancel"
    assert_problem(server.request("GET", path), 400, "invalid_task_id")


def test_absolute_form_target_is_accepted(server):
    data = exchange(
        server, b"GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert data.startswith(b"HTTP/1.1 200"), data[:200]


def test_bad_query_encoding_is_invalid_parameter(server):
    assert_problem(server.request("GET", "/v1/tasks?status=%zz"), 400, "invalid_parameter")


def test_empty_query_name_is_invalid_parameter(server):
    assert_problem(server.request("GET", "/v1/tasks?=1"), 400, "invalid_parameter")


@pytest.mark.parametrize(
    "encoding",
    [b"gzip", b"identity", b"chunked, gzip", b"xchunked", b"chunked, chunked", b"gzip, chunked"],
)
def test_unframed_transfer_encoding_is_rejected(server, encoding):
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    data = exchange(
        server,
        b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: " + encoding + b"\r\n\r\n" + smuggled,
    )
    responses = split_responses(data)
    assert len(responses) == 1, "the body must not be read as a second request"
    assert responses[0][0] == 400
    assert json.loads(responses[0][2])["code"] == "malformed_request"
    assert responses[0][1].get("connection") == "close"


def test_chunked_body_is_accepted(server):
    body = json.dumps({"text": "chunked body"}).encode()
    data = exchange(
        server,
        b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n",
    )
    assert data.startswith(b"HTTP/1.1 202"), data[:200]


def test_empty_header_lines_hit_header_limit(server):
    # Empty header lines are counted too: 1 MB of "X:" lines is over the
    # 16 KiB limit.
    data = exchange(
        server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X:\r\n" * 250_000 + b"\r\n"
    )
    assert_closing_problem(data, 400, "malformed_request")


def test_server_survives_header_flood(server):
    exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X:\r\n" * 250_000 + b"\r\n")
    status, _, _ = server.request("GET", "/healthz")
    assert status == 200


def test_compressed_body_is_415(server):
    body = json.dumps({"text": "a"}).encode()
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert_problem(server.request("POST", "/v1/tasks", body, headers), 415, "unsupported_media_type")


def test_second_content_encoding_is_415(server):
    fields = b"Content-Encoding: identity\r\nContent-Encoding: gzip\r\n"
    status, code = submit_with_fields(server, fields)
    assert status == 415
    assert code == "unsupported_media_type"


@pytest.mark.parametrize("charset", ["latin1", "utf-16"])
def test_non_utf8_charset_is_415(server, charset):
    body = json.dumps({"text": "a"}).encode()
    headers = {"Content-Type": f"application/json; charset={charset}"}
    assert_problem(server.request("POST", "/v1/tasks", body, headers), 415, "unsupported_media_type")


def test_two_idempotency_keys_are_rejected(server):
    status, code = submit_with_fields(server, b"Idempotency-Key: a\r\nIdempotency-Key: b\r\n")
    assert status == 400
    assert code == "invalid_idempotency_key"


@pytest.mark.parametrize(
    "body",
    [
        '{"text": "a", "text": "b"}',
        '{"text": "a", "metadata": {"k": "1", "k": "2"}}',
        '{"text": "a", "params": {"top_n": 3, "top_n": 4}}',
    ],
)
def test_repeated_member_is_invalid_json(server, body):
    assert_problem(server.request("POST", "/v1/tasks", body), 400, "invalid_json")


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_action_with_query_is_invalid_parameter(server, action):
    path = f"/v1/tasks/{unused_task_id()}/{action}?force=1"
    assert_problem(server.request("POST", path), 400, "invalid_parameter")


def response_of(data):
    """Return (status, lower-case headers, body) of the only response in data."""
    responses = split_responses(data)
    assert len(responses) == 1, f"expected one response, got {len(responses)}: {data[:300]!r}"
    return responses[0]


def assert_closing_problem(data, status, code):
    """Require one problem response with Connection: close, and nothing after it."""
    got_status, headers, body = response_of(data)
    assert got_status == status, data[:300]
    problem = json.loads(body)
    assert problem["code"] == code
    assert problem["status"] == status
    if code == "malformed_request":
        assert problem["title"] == "Malformed HTTP request"
    assert headers.get("connection") == "close", "the connection must close after a framing fault"


@pytest.mark.parametrize(
    "target",
    [b"//x/metrics", b"//x/healthz", b"//x/v1/tasks", b"//healthz", b"//", b"http://x//x/metrics"],
)
def test_double_slash_target_is_not_routed(server, target):
    data = exchange(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    status, _, body = response_of(data)
    assert status == 404, data[:300]
    assert json.loads(body)["code"] == "not_found"


@pytest.mark.parametrize("target", [b"*", b"v1/tasks", b"ftp://x/healthz", b"/healthz#top"])
def test_target_outside_origin_and_absolute_form_is_404(server, target):
    data = exchange(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    status, _, body = response_of(data)
    assert status == 404, data[:300]
    assert json.loads(body)["code"] == "not_found"


@pytest.mark.parametrize("fold", [b" continued", b"\tcontinued"], ids=["space", "tab"])
def test_obs_fold_is_rejected(server, fold):
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    data = exchange(
        server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n" + fold + b"\r\n\r\n" + smuggled
    )

    assert_closing_problem(data, 400, "malformed_request")


def test_space_before_first_field_is_rejected(server):
    data = exchange(server, b"GET /healthz HTTP/1.1\r\n Host: x\r\n\r\n")

    assert_closing_problem(data, 400, "malformed_request")


def test_transfer_encoding_in_http10_is_rejected(server):
    body = json.dumps({"text": "http/1.0 chunked"}).encode()
    data = exchange(
        server,
        b"POST /v1/tasks HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n",
    )

    assert_closing_problem(data, 400, "malformed_request")
    _, _, page = server.request("GET", "/v1/tasks")
    assert page["items"] == [], "a rejected request creates nothing"


def test_duplicate_content_type_is_rejected(server):
    body = json.dumps({"text": "two types"}).encode()
    data = exchange(
        server,
        b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Type: text/plain\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
    )

    assert_closing_problem(data, 400, "malformed_request")


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 12\r\nContent-Length: 13\r\n",
        b"Content-Length: 12, 13\r\n",
        b"Content-Length: 12\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 12\r\n",
    ],
    ids=["two-lengths", "length-list", "length-then-chunked", "chunked-then-length"],
)
def test_conflicting_framing_is_rejected(server, framing):
    data = exchange(
        server,
        b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + framing + b"\r\n" + b'{"text":"a"}',
    )

    assert_closing_problem(data, 400, "malformed_request")


def test_broken_chunk_size_is_rejected(server):
    data = exchange(
        server,
        b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )

    assert_closing_problem(data, 400, "malformed_request")
    _, _, page = server.request("GET", "/v1/tasks")
    assert page["items"] == [], "a rejected request creates nothing"


def test_equal_content_lengths_are_accepted(server):
    body = b'{"text":"a"}'
    data = exchange(
        server,
        b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 12\r\nContent-Length: 12\r\nConnection: close\r\n\r\n" + body,
    )

    assert data.startswith(b"HTTP/1.1 202"), data[:300]


@pytest.mark.parametrize("version", [b"2.0", b"3.0", b"0.9", b"1.2"])
def test_unsupported_version_is_505(server, version):
    data = exchange(server, b"GET /healthz HTTP/" + version + b"\r\nHost: x\r\n\r\n")

    assert data.startswith(b"HTTP/1.1 505"), data[:300]
    status, headers, body = response_of(data)
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "http_version_not_supported"
    assert problem["status"] == 505
    assert headers.get("connection") == "close"


@pytest.mark.parametrize("version", [b"HTTP/2", b"HTTP/1.10", b"HTTPS/1.1"])
def test_malformed_version_is_400(server, version):
    data = exchange(server, b"GET /healthz " + version + b"\r\nHost: x\r\n\r\n")

    assert_closing_problem(data, 400, "malformed_request")


@pytest.mark.parametrize("target", [b"/healthz", b"/metrics", b"/openapi.json", b"/v1/tasks"])
def test_large_declared_body_outside_submit_is_413_unread(server, target):
    # Only the header is sent, so the response must not wait for the 6 MB body.
    data = exchange(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 6000000\r\nExpect: 100-continue\r\n\r\n")
    assert not data.startswith(b"HTTP/1.1 100"), "no 100 Continue for a body that is refused"
    assert_closing_problem(data, 413, "payload_too_large")


def test_large_chunked_body_outside_submit_is_413(server):
    chunk = b"a" * 8192
    data = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n")
    assert_closing_problem(data, 413, "payload_too_large")


def test_small_body_outside_submit_is_read(server):
    data = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                    b"Connection: close\r\n\r\n{}")
    assert response_of(data)[0] == 200


@pytest.mark.parametrize(
    "raw",
    [b"GET /healthz HTTP/1.1\nHost: x\n\n", b"GET /healthz HTTP/1.1\r\nHost: x\n\r\n"],
    ids=["every-line", "one-line"],
)
def test_bare_line_feed_is_rejected_at_once(server, raw):
    started = time.monotonic()
    data = exchange(server, raw)
    answered_after = time.monotonic() - started

    assert_closing_problem(data, 400, "malformed_request")
    assert answered_after < READ_TIMEOUT_S / 2, "the request must not wait for a line ending"


def test_long_method_is_cut_in_the_detail(server):
    method = b"X" * 5000
    data = exchange(server, method + b" /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    status, _, body = response_of(data)
    problem = json.loads(body)
    assert status == 405
    assert problem["code"] == "method_not_allowed"
    assert "X" * 32 in problem["detail"]
    assert "X" * 33 not in problem["detail"]
