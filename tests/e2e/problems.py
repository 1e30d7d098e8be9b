"""Checks shared by the test files: problem documents and field formats."""

import datetime
import uuid

from conftest import TIMESTAMP_PATTERN, UUID_V7_PATTERN

# Text that must never reach a client in an error body: SQL, driver messages
# (SQLite's function names, libpq's SQLSTATE codes and connection URLs, which
# may carry a password), stack traces and file paths.
INTERNAL_MARKERS = (
    "SELECT ", "INSERT ", "UPDATE ", "sqlite3_", "SQLSTATE", "postgresql:", "libpq", "Traceback",
    ".cpp", "/tmp/",
)


def assert_problem(response, status, code):
    """Require an application/problem+json error with the given status and code."""
    got_status, headers, body = response
    assert got_status == status, f"expected {status} {code}, got {got_status}: {body!r}"
    content_type = headers.get("content-type", "")
    assert content_type.startswith("application/problem+json"), f"content-type {content_type!r}"
    assert isinstance(body, dict), f"problem body is not a JSON object: {body!r}"
    assert body.get("code") == code, f"expected code {code}: {body!r}"
    assert body.get("status") == status, f"problem status member: {body!r}"
    for member in ("type", "title", "detail"):
        assert isinstance(body.get(member), str), f"problem member {member} missing: {body!r}"
    assert body["title"], f"empty title: {body!r}"
    text = repr(body)
    for marker in INTERNAL_MARKERS:
        assert marker not in text, f"problem body leaks {marker!r}: {body!r}"
    return body


def assert_validation_errors(body):
    """Require a non-empty errors list of {field, message} objects; returns the fields."""
    errors = body.get("errors")
    assert isinstance(errors, list), f"validation problem without errors list: {body!r}"
    assert errors, f"validation problem with an empty errors list: {body!r}"
    for error in errors:
        assert isinstance(error, dict), f"errors item is not an object: {error!r}"
        assert isinstance(error.get("field"), str), f"errors item without field: {error!r}"
        assert isinstance(error.get("message"), str), f"errors item without message: {error!r}"
        assert error["message"], f"errors item with empty message: {error!r}"
    return [error["field"] for error in errors]


def parse_timestamp(value):
    """Parse an RFC 3339 UTC timestamp with a Z suffix into an aware datetime."""
    assert isinstance(value, str), f"timestamp is not a string: {value!r}"
    assert TIMESTAMP_PATTERN.match(value), f"timestamp {value!r} is not RFC 3339 UTC with ms"
    whole, fraction = value[:-1].split(".")
    micros = int((fraction + "000000")[:6])
    moment = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    return moment.replace(microsecond=micros, tzinfo=datetime.timezone.utc)


def uuid7_millis(task_id):
    """Return the Unix time in milliseconds carried by a UUIDv7."""
    assert UUID_V7_PATTERN.match(task_id), f"{task_id!r} is not a lower-case UUIDv7"
    return uuid.UUID(task_id).int >> 80


def unused_task_id():
    """Return a well-formed UUIDv7 that no server issued (random bits from uuid4)."""
    now_ms = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
    random_bits = uuid.uuid4().int & ((1 << 74) - 1)
    rand_a = random_bits >> 62
    rand_b = random_bits & ((1 << 62) - 1)
    value = (now_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))
