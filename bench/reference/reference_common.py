"""Settings, table schema and database helpers shared by the API and the worker.

start.py passes the settings to its child processes in environment
variables, because uvicorn and Celery import the application modules by name
and take no application arguments.
"""

import datetime
import os
import secrets
import time
import uuid

import psycopg2

DATABASE_URL_VARIABLE = "REFERENCE_DATABASE_URL"
BROKER_URL_VARIABLE = "REFERENCE_BROKER_URL"
SIMULATED_DELAY_VARIABLE = "REFERENCE_SIMULATED_DELAY_MS"
WORKER_READY_FILE_VARIABLE = "REFERENCE_WORKER_READY_FILE"
PREFETCH_MULTIPLIER_VARIABLE = "REFERENCE_PREFETCH_MULTIPLIER"

TASK_NAME = "reference.analyze_text"
CONNECT_TIMEOUT_S = 10
# synchronous_commit is set per session so that a server default of off
# cannot make a commit return before its WAL record is flushed.
CONNECTION_OPTIONS = "-c synchronous_commit=on -c TimeZone=UTC"

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS reference_tasks (
    id uuid PRIMARY KEY,
    status text NOT NULL
        CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')),
    text text NOT NULL,
    result jsonb,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz
)
"""


def required_environment(name):
    """Return the environment variable name, raising RuntimeError when it is unset."""
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set; start the reference service with start.py")
    return value


def connect(database_url, application_name):
    """Open a psycopg2 connection in UTC with synchronous_commit on."""
    return psycopg2.connect(
        database_url,
        connect_timeout=CONNECT_TIMEOUT_S,
        options=CONNECTION_OPTIONS,
        application_name=application_name,
    )


def new_task_id():
    """Return a new UUID version 7 (RFC 9562) as a uuid.UUID.

    The millisecond timestamp in the high bits keeps primary-key inserts at
    the right edge of the B-tree, as Conveyor's ids do, so the comparison
    does not charge the reference for random-order index inserts.
    """
    unix_ms = time.time_ns() // 1_000_000
    random_bits = secrets.randbits(74)
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (random_bits >> 62) << 64
    value |= 0b10 << 62
    value |= random_bits & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def format_timestamp(moment):
    """Return an aware datetime as RFC 3339 UTC with milliseconds and a Z suffix, or None."""
    if moment is None:
        return None
    utc = moment.astimezone(datetime.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
