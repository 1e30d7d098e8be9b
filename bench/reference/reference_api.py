"""The reference service's HTTP API: FastAPI over psycopg2, enqueueing to Celery.

uvicorn runs one copy of this module in each worker process. Each process
opens its own connection pool at start-up, because psycopg2 connections must
not be shared across fork() or spawn.

The handlers are plain `def`, not `async def`, because psycopg2 and the
Redis client that Celery publishes with block the calling thread. FastAPI
runs plain `def` handlers in its thread pool (anyio's default limit of 40
threads), so a slow commit blocks one thread and never the event loop.
"""

import contextlib
import logging
import threading
import uuid

import celery
import fastapi
import psycopg2
import psycopg2.extras
import psycopg2.pool
import pydantic
from fastapi import responses

import reference_common

# As many connections as anyio's default thread limit, which caps the plain
# `def` handlers running at once, so a handler rarely waits for a
# connection. Two uvicorn workers open at most 80 connections.
POOL_SIZE = 40

logger = logging.getLogger("reference.api")

app = fastapi.FastAPI(title="Conveyor reference service", openapi_url=None)
broker = celery.Celery("reference", broker=reference_common.required_environment(
    reference_common.BROKER_URL_VARIABLE))
broker.conf.update(broker_pool_limit=POOL_SIZE, task_ignore_result=True)


class SubmitRequest(pydantic.BaseModel):
    """The body of POST /v1/tasks."""

    text: pydantic.StrictStr = pydantic.Field(..., min_length=1)

    class Config:
        extra = pydantic.Extra.forbid

    @pydantic.validator("text")
    def reject_unstorable_text(cls, text):
        # PostgreSQL text columns hold no U+0000, and a lone surrogate from a
        # JSON escape such as "\ud800" has no UTF-8 encoding.
        # NOTE: Conveyor stores U+0000, but the reference rejects it with 422.
        if "\x00" in text:
            raise ValueError("text must not contain U+0000")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text contains a lone surrogate, which is not valid Unicode")
        return text


class ConnectionPool:
    """A psycopg2 ThreadedConnectionPool that blocks when every connection is in use.

    ThreadedConnectionPool.getconn raises PoolError when the pool is
    exhausted, so a semaphore with one permit per connection makes callers
    wait instead.
    """

    def __init__(self, database_url, size):
        self._pool = psycopg2.pool.ThreadedConnectionPool(
            1, size, dsn=database_url, connect_timeout=reference_common.CONNECT_TIMEOUT_S,
            options=reference_common.CONNECTION_OPTIONS,
            application_name="conveyor-reference-api",
        )
        self._permits = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def connection(self):
        """Lend a connection in autocommit mode and take it back, closing it when it broke.

        In autocommit mode each statement is its own transaction, committed
        before execute() returns, so an INSERT costs one round trip instead
        of three (BEGIN, INSERT, COMMIT as psycopg2 sends them by default).
        """
        self._permits.acquire()
        connection = None
        try:
            connection = self._pool.getconn()
            connection.autocommit = True
            yield connection
        finally:
            if connection is not None:
                self._pool.putconn(connection, close=connection.closed != 0)
            self._permits.release()

    def close(self):
        self._pool.closeall()


pool = None


@app.on_event("startup")
def open_pool():
    global pool
    database_url = reference_common.required_environment(reference_common.DATABASE_URL_VARIABLE)
    pool = ConnectionPool(database_url, POOL_SIZE)


@app.on_event("shutdown")
def close_pool():
    if pool is not None:
        pool.close()


def problem(status, code, detail):
    """Return an application/problem+json response."""
    body = {"type": "about:blank", "title": code.replace("_", " "), "status": status,
            "detail": detail, "code": code}
    return responses.JSONResponse(body, status_code=status, media_type="application/problem+json")


def task_resource(row):
    """Return the JSON body for a reference_tasks row fetched as a dict."""
    task_id = str(row["id"])
    return {
        "task_id": task_id,
        "id": task_id,
        "type": "text.analyze",
        "status": row["status"],
        "attempts": row["attempts"],
        "created_at": reference_common.format_timestamp(row["created_at"]),
        "updated_at": reference_common.format_timestamp(row["updated_at"]),
        "started_at": reference_common.format_timestamp(row["started_at"]),
        "finished_at": reference_common.format_timestamp(row["finished_at"]),
        "result": row["result"],
        "error": None if row["error"] is None else {"code": "processing_error",
                                                     "message": row["error"]},
    }


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/v1/tasks", status_code=202)
def submit_task(request: SubmitRequest):
    task_id = reference_common.new_task_id()

    # The INSERT commits on its own (autocommit, synchronous_commit on)
    # before the message is published, so an acknowledged task is in
    # PostgreSQL even when the broker or this process dies right after the
    # response.
    try:
        with pool.connection() as connection:
            with connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                cursor.execute(
                    "INSERT INTO reference_tasks (id, status, text, created_at, updated_at)"
                    " VALUES (%s, 'PENDING', %s, now(), now())"
                    " RETURNING id, status, attempts, created_at, updated_at, started_at,"
                    " finished_at, result, error",
                    (str(task_id), request.text),
                )
                row = cursor.fetchone()
    except psycopg2.Error:
        logger.exception("inserting task %s failed", task_id)
        return problem(503, "unavailable", "The database is unavailable; retry later.")

    # NOTE: nothing publishes a committed task again when its publish fails,
    # so it stays PENDING. Conveyor's workers claim tasks from the database
    # and have no such gap.
    try:
        broker.send_task(reference_common.TASK_NAME, args=[str(task_id)], task_id=str(task_id))
    except Exception:
        logger.exception("publishing task %s to the broker failed", task_id)
        return problem(503, "unavailable", "The task queue is unavailable; retry later.")

    return responses.JSONResponse(
        task_resource(row), status_code=202, headers={"Location": f"/v1/tasks/{task_id}"}
    )


@app.get("/v1/tasks/{task_id}")
def get_task(task_id: str):
    try:
        parsed_id = uuid.UUID(task_id)
    except ValueError:
        return problem(400, "invalid_task_id", f"The task id {task_id!r} is not a UUID.")

    try:
        with pool.connection() as connection:
            with connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                cursor.execute(
                    "SELECT id, status, attempts, created_at, updated_at, started_at,"
                    " finished_at, result, error FROM reference_tasks WHERE id = %s",
                    (str(parsed_id),),
                )
                row = cursor.fetchone()
    except psycopg2.Error:
        logger.exception("reading task %s failed", parsed_id)
        return problem(503, "unavailable", "The database is unavailable; retry later.")

    if row is None:
        return problem(404, "task_not_found", f"No task has the id {parsed_id}.")
    return responses.JSONResponse(task_resource(row))
