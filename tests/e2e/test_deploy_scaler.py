"""The query that deploy/kubernetes/worker-autoscaler.yaml gives KEDA's
postgresql scaler, run on a real database that Conveyor migrated.

The scaler sets the number of worker pods from this query's value, so it
must return the number of PENDING tasks, whatever other states hold.
"""

from urllib.parse import urlparse

import pytest
import yaml

from conftest import REPOSITORY

pytestmark = pytest.mark.postgres_only(reason="runs the scaler's query with psql")

SCALER_FILE = REPOSITORY / "deploy" / "kubernetes" / "worker-autoscaler.yaml"


def scaler_query():
    documents = [document for document in yaml.safe_load_all(SCALER_FILE.read_text()) if document]
    scaled_objects = [document for document in documents if document["kind"] == "ScaledObject"]
    assert len(scaled_objects) == 1
    triggers = scaled_objects[0]["spec"]["triggers"]
    assert triggers[0]["type"] == "postgresql"
    return triggers[0]["metadata"]["query"]


def submit(api, text):
    status, _, body = api.request("POST", "/v1/tasks", {"text": text})
    assert status == 202, body
    return body["task_id"]


def test_scaler_query_counts_pending(start_server, postgres_cluster):
    # An api process without workers: submitted tasks stay PENDING.
    api = start_server("api")
    database = urlparse(api.database).path.lstrip("/")
    query = scaler_query()
    assert postgres_cluster.psql(query, database=database) == "0"

    task_ids = [submit(api, f"Text number {index}.") for index in range(3)]
    status, _, body = api.request("POST", f"/v1/tasks/{task_ids[0]}/cancel")
    assert status == 200, body

    pending = postgres_cluster.psql("SELECT count(*) FROM tasks WHERE status = 'PENDING'", database=database)
    assert pending == "2"
    assert postgres_cluster.psql(query, database=database) == pending
