"""The reference service's Celery application and its one task, analyze_text.

Run by start.py as a prefork worker. Each pool process opens its own
PostgreSQL connection after the fork (worker_process_init), because a
connection must not be shared between processes.
"""

import json
import logging
import os
import pathlib
import time

import celery
import psycopg2
from celery import bootsteps, signals

import reference_common
import text_analysis

MAX_DATABASE_RETRIES = 3
DATABASE_RETRY_DELAY_S = 1.0
EVENT_LOOP_WAKEUP_INTERVAL_S = 0.001

logger = logging.getLogger("reference.worker")

app = celery.Celery(
    "reference",
    broker=reference_common.required_environment(reference_common.BROKER_URL_VARIABLE),
)
app.conf.update(
    # A message is acknowledged after the task returns, so a worker that dies
    # mid-task leaves it to be delivered again. Celery's optimizing guide
    # pairs late acknowledgement with a prefetch multiplier of 1 so that each
    # pool process reserves one message at a time. For many short tasks it
    # suggests a larger multiplier, which start.py --prefetch-multiplier sets.
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    # Without this, a task whose pool process is killed is acknowledged
    # anyway and lost. The analysis is idempotent, so running it again is safe.
    task_reject_on_worker_lost=True,
    # Results go to PostgreSQL, so Celery needs no result backend.
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    worker_disable_rate_limits=True,
)
prefetch_multiplier = os.environ.get(reference_common.PREFETCH_MULTIPLIER_VARIABLE)
if prefetch_multiplier:
    app.conf.worker_prefetch_multiplier = int(prefetch_multiplier)


def _do_nothing():
    pass


class EventLoopWakeup(bootsteps.StartStopStep):
    """A 1 ms timer in the worker's event loop, which bounds a stall after late acknowledgements.

    With the Redis transport (Celery 5.2.6, Kombu 5.2.4) the worker sends
    acknowledgements through the event loop's call_soon queue, which runs
    after the loop has decided whether to send the next BRPOP. When every
    reserved message is acknowledged in the same loop iteration, no BRPOP is
    outstanding and the loop sleeps until its next timer, up to 5 seconds,
    while messages wait in Redis. The timer bounds each such stall to about
    1 ms and costs about 3% of one CPU while the worker is idle. Measured
    with 2 pool processes on a shared 2-CPU machine, draining 2,000 queued
    tasks took 76 to 110 s without this step (15 to 22 stalls of up to 5 s)
    and 5.5 to 6.1 s with it.
    """

    requires = {"celery.worker.components:Hub"}

    def start(self, worker):
        if worker.hub is not None:
            worker.hub.call_repeatedly(EVENT_LOOP_WAKEUP_INTERVAL_S, _do_nothing)


app.steps["worker"].add(EventLoopWakeup)

database_url = reference_common.required_environment(reference_common.DATABASE_URL_VARIABLE)
simulated_delay_s = int(reference_common.required_environment(
    reference_common.SIMULATED_DELAY_VARIABLE)) / 1000.0
connection = None


def database_connection():
    """Return this pool process's connection, reconnecting when the last one broke."""
    global connection
    if connection is None or connection.closed != 0:
        connection = reference_common.connect(database_url, "conveyor-reference-worker")
        # Each UPDATE below is a transaction of its own, committed when
        # execute() returns.
        connection.autocommit = True
    return connection


@signals.worker_process_init.connect
def open_connection(**_):
    database_connection()


@signals.worker_ready.connect
def announce_ready(**_):
    # start.py waits for this file before it reports the service ready.
    ready_file = pathlib.Path(
        reference_common.required_environment(reference_common.WORKER_READY_FILE_VARIABLE))
    ready_file.write_text("ready\n", encoding="utf-8")


def mark_processing(task_id):
    """Move a PENDING or PROCESSING task to PROCESSING and return its text, or None."""
    with database_connection().cursor() as cursor:
        # PROCESSING is accepted too, because a message delivered again after
        # a worker died finds the task still PROCESSING.
        cursor.execute(
            "UPDATE reference_tasks SET status = 'PROCESSING', attempts = attempts + 1,"
            " started_at = now(), updated_at = now()"
            " WHERE id = %s AND status IN ('PENDING', 'PROCESSING') RETURNING text",
            (task_id,),
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def finish(task_id, status, result, error):
    with database_connection().cursor() as cursor:
        cursor.execute(
            "UPDATE reference_tasks SET status = %s, result = %s, error = %s,"
            " finished_at = now(), updated_at = now()"
            " WHERE id = %s AND status = 'PROCESSING'",
            (status, None if result is None else json.dumps(result), error, task_id),
        )


@app.task(name=reference_common.TASK_NAME, bind=True)
def analyze_text(self, task_id):
    try:
        text = mark_processing(task_id)
        if text is None:
            logger.warning("task %s is missing or already finished; skipping it", task_id)
            return

        if simulated_delay_s > 0:
            time.sleep(simulated_delay_s)

        try:
            result = text_analysis.analyze(text)
        except Exception as error:
            logger.exception("analysing task %s failed", task_id)
            finish(task_id, "FAILED", None, f"analysis failed: {error}")
            return

        finish(task_id, "COMPLETED", result, None)
    except psycopg2.OperationalError as error:
        logger.warning("database error on task %s, retry %d of %d: %s", task_id,
                       self.request.retries + 1, MAX_DATABASE_RETRIES, error)
        raise self.retry(exc=error, countdown=DATABASE_RETRY_DELAY_S,
                         max_retries=MAX_DATABASE_RETRIES)
