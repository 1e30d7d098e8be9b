"""The Conveyor container image, tested in real containers.

scripts/container-test.sh (`make container-test`) builds the images and runs
this file. PostgreSQL runs in a container of its own; the image runs as
`api`, `worker` and `serve`. Every container uses --network host and listens
on a free 127.0.0.1 port, carries the run's label, and is removed at the
end, with its volumes.

Environment: CONVEYOR_DOCKER (the docker client), CONVEYOR_IMAGE,
CONVEYOR_POSTGRES_IMAGE, CONVEYOR_CONTAINER_RUN_ID, and
CONVEYOR_CONTAINER_RESULTS, a JSON file that receives the image size and the
measured start-up times.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import time
import uuid

import pytest

DOCKER = os.environ.get("CONVEYOR_DOCKER", "docker")
IMAGE = os.environ.get("CONVEYOR_IMAGE", "conveyor:container-test")
POSTGRES_IMAGE = os.environ.get("CONVEYOR_POSTGRES_IMAGE", "conveyor-container-test/postgres:15")
RUN_ID = os.environ.get("CONVEYOR_CONTAINER_RUN_ID") or uuid.uuid4().hex[:12]
RESULTS_PATH = os.environ.get("CONVEYOR_CONTAINER_RESULTS")
LABEL = "conveyor-container-test"

COMMAND_TIMEOUT_S = 120.0
STARTUP_TIMEOUT_S = 30.0
TASK_TIMEOUT_S = 60.0
# The image's HEALTHCHECK runs every 10 s; three intervals leave room for a
# slow first probe.
HEALTHY_TIMEOUT_S = 45.0
STARTUP_SAMPLES = 3

# Examples whose results docs/analysis.md states:
# (text, word_count, unique_words, top_words).
ANALYSIS_CASES = [
    ("The cat and the hat.", 5, 4, [("cat", 1), ("hat", 1)]),
    ("Don\u2019t stop, DON'T stop!", 4, 2, [("stop", 2)]),
    ("In 2026, 3.14 is pi.", 5, 5, [("pi", 1)]),
    ("state-of-the-art art", 5, 4, [("art", 2), ("state", 1)]),
    ("zebra yak zebra yak zebra", 5, 2, [("zebra", 3), ("yak", 2)]),
    (
        "A queue hands work to workers. Workers take work from the queue, do the work, "
        "and report back to the queue.",
        21,
        13,
        [("queue", 3), ("work", 3), ("workers", 2), ("back", 1), ("hands", 1)],
    ),
]

_containers = []
_volumes = []
_measurements = {}


# --- docker -------------------------------------------------------------------


def docker(*args, check=True, timeout=COMMAND_TIMEOUT_S):
    """Run one docker command; returns the CompletedProcess, text mode."""
    completed = subprocess.run(
        [DOCKER, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=timeout,
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {completed.returncode}: {completed.stderr.strip()}"
        )
    return completed


def run_container(role, *command, env=None, image=IMAGE, options=()):
    """Start a detached container on the host network; returns its name."""
    name = f"conveyor-ct-{RUN_ID}-{role}"
    args = ["run", "--detach", "--name", name, "--network", "host",
            "--label", f"{LABEL}={RUN_ID}", *options]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    # Recorded first, so that a container that exists but failed to start
    # is removed too.
    _containers.append(name)
    docker(*args, image, *command)
    return name


def remove_container(name):
    docker("rm", "--force", "--volumes", name, check=False)
    if name in _containers:
        _containers.remove(name)


def inspect(name, template):
    return docker("inspect", "--format", template, name).stdout.strip()


def logs(name, count=40):
    completed = docker("logs", "--tail", str(count), name, check=False)
    return (completed.stdout + completed.stderr).strip()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def cleanup_and_results():
    """Remove every container and volume of this run; write the measurements."""
    yield
    for name in reversed(list(_containers)):
        remove_container(name)
    for volume in _volumes:
        docker("volume", "rm", "--force", volume, check=False)
    if RESULTS_PATH:
        size = int(docker("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
        results = {"image": IMAGE, "image_bytes": size, **_measurements}
        with open(RESULTS_PATH, "w", encoding="utf-8") as results_file:
            json.dump(results, results_file, indent=2)


# --- HTTP ---------------------------------------------------------------------


class Server:
    """A container that serves HTTP on 127.0.0.1:port."""

    def __init__(self, name, port):
        self.name = name
        self.port = port

    def request(self, method, path, body=None, timeout=30.0):
        """Send one request; returns (status, JSON body or raw bytes)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = None
            headers = {}
            if body is not None:
                payload = json.dumps(body).encode("utf-8")
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            if raw and "json" in (response.getheader("Content-Type") or ""):
                return response.status, json.loads(raw)
            return response.status, raw
        finally:
            connection.close()

    def submit(self, body):
        if isinstance(body, str):
            body = {"text": body}
        status, task = self.request("POST", "/v1/tasks", body)
        assert status == 202, f"submit returned {status}: {task!r}"
        return task

    def get_task(self, task_id, wait=None):
        query = "" if wait is None else f"?wait={wait}"
        status, task = self.request("GET", f"/v1/tasks/{task_id}{query}", timeout=90.0)
        assert status == 200, f"GET {task_id} returned {status}: {task!r}"
        return task

    def wait_for_status(self, task_id, status, timeout=TASK_TIMEOUT_S):
        """Poll until the task has status; long-polls for a terminal one."""
        deadline = time.monotonic() + timeout
        terminal = status in ("COMPLETED", "FAILED", "CANCELLED")
        task = None
        while time.monotonic() < deadline:
            remaining = max(0.1, min(10.0, deadline - time.monotonic()))
            task = self.get_task(task_id, wait=f"{remaining:.1f}" if terminal else None)
            if task["status"] == status:
                return task
            if not terminal:
                time.sleep(0.05)
        raise AssertionError(f"task {task_id} did not reach {status} in {timeout}s: {task!r}")


def wait_healthz(name, port, timeout=STARTUP_TIMEOUT_S):
    """Poll GET /healthz until it returns 200; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    attempts = 0
    while time.monotonic() < deadline:
        try:
            status, _ = Server(name, port).request("GET", "/healthz", timeout=2.0)
            if status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        attempts += 1
        if attempts % 50 == 0 and inspect(name, "{{.State.Running}}") != "true":
            break
        time.sleep(0.01)
    raise AssertionError(
        f"{name} did not return 200 for /healthz on 127.0.0.1:{port} within {timeout}s; "
        f"log:\n{logs(name)}"
    )


def wait_healthy(name, timeout=HEALTHY_TIMEOUT_S):
    """Wait until docker reports the HEALTHCHECK status healthy; returns the last state."""
    deadline = time.monotonic() + timeout
    health = {}
    while time.monotonic() < deadline:
        health = json.loads(inspect(name, "{{json .State.Health}}") or "null") or {}
        if health.get("Status") in ("healthy", "unhealthy"):
            return health
        time.sleep(0.5)
    return health


def stop(name):
    """docker stop with its default timeout (SIGTERM, SIGKILL after 10 s); returns the exit code."""
    docker("stop", name, timeout=60.0)
    return int(inspect(name, "{{.State.ExitCode}}"))


def proc_status_ids(name, field):
    """The real, effective, saved and filesystem ids of PID 1 in the container."""
    status = docker("exec", name, "cat", "/proc/1/status").stdout
    line = next(line for line in status.splitlines() if line.startswith(f"{field}:"))
    return line.split()[1:]


# --- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url():
    port = free_port()
    name = run_container("postgres", image=POSTGRES_IMAGE, env={"PGPORT": port})
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        ready = docker(
            "exec", name, "/usr/lib/postgresql/15/bin/pg_isready", "--quiet", "--host",
            "127.0.0.1", "--port", str(port), "--dbname", "conveyor", "--username", "postgres",
            check=False,
        )
        if ready.returncode == 0:
            return f"postgresql://postgres@127.0.0.1:{port}/conveyor"
        time.sleep(0.2)
    raise AssertionError(f"PostgreSQL did not accept connections; log:\n{logs(name)}")


@pytest.fixture(scope="module")
def api(postgres_url):
    port = free_port()
    name = run_container("api", "api", env={
        "CONVEYOR_LISTEN": f"127.0.0.1:{port}",
        "CONVEYOR_DATABASE": postgres_url,
        "CONVEYOR_ENABLE_FAULT_INJECTION": "true",
    })
    wait_healthz(name, port)
    return Server(name, port)


@pytest.fixture(scope="module")
def worker(postgres_url, api):
    """A worker container; its port serves /healthz and /metrics only."""
    port = free_port()
    name = run_container("worker", "worker", env={
        "CONVEYOR_METRICS_LISTEN": f"127.0.0.1:{port}",
        "CONVEYOR_DATABASE": postgres_url,
        "CONVEYOR_SIMULATED_DELAY": "100ms..300ms",
        "CONVEYOR_ENABLE_FAULT_INJECTION": "true",
    })
    wait_healthz(name, port)
    return Server(name, port)


# --- tests ------------------------------------------------------------------------


def test_help_lists_server_commands():
    completed = docker("run", "--rm", "--network", "host", "--label", f"{LABEL}={RUN_ID}",
                       IMAGE, "--help", check=False)
    assert completed.returncode == 0, completed.stderr
    for command in ("serve", "api", "worker", "migrate"):
        assert command in completed.stdout, f"--help does not name {command}"


def test_image_user_is_not_root():
    user = docker("image", "inspect", "--format", "{{.Config.User}}", IMAGE).stdout.strip()
    assert user, "the image sets no USER, so it runs as root"
    assert user.split(":")[0] not in ("0", "root")


def test_api_process_is_not_root(api):
    assert "0" not in proc_status_ids(api.name, "Uid")
    assert "0" not in proc_status_ids(api.name, "Gid")


def test_worker_process_is_not_root(worker):
    assert "0" not in proc_status_ids(worker.name, "Uid")


def test_tasks_complete_with_correct_results(api, worker):
    submitted = [(api.submit(text), case) for text, *case in ANALYSIS_CASES]
    for task, (word_count, unique_words, top_words) in submitted:
        done = api.wait_for_status(task["task_id"], "COMPLETED")
        assert done["attempts"] == 1
        assert done["error"] is None
        assert done["result"]["word_count"] == word_count, done
        assert done["result"]["unique_words"] == unique_words, done
        ranked = [(entry["word"], entry["count"]) for entry in done["result"]["top_words"]]
        assert ranked == top_words


def test_api_healthcheck_turns_healthy(api):
    health = wait_healthy(api.name)
    assert health.get("Status") == "healthy", health


def test_worker_healthcheck_turns_healthy(worker):
    health = wait_healthy(worker.name)
    assert health.get("Status") == "healthy", health


def test_healthcheck_reads_flags_and_passes_init():
    # serve behind Docker's init, with --listen on the command line. The
    # variable names a port where nothing listens, so a check that read it
    # instead of the flag would fail.
    port = free_port()
    behind_init = run_container(
        "serve-init", "serve", "--listen", f"127.0.0.1:{port}",
        env={"CONVEYOR_LISTEN": f"127.0.0.1:{free_port()}"}, options=["--init"],
    )
    # A worker without a metrics port has nothing to ask; its check passes.
    quiet_worker = run_container("worker-quiet", "worker", env={"CONVEYOR_METRICS_LISTEN": ""})
    wait_healthz(behind_init, port)

    assert wait_healthy(behind_init).get("Status") == "healthy"
    assert wait_healthy(quiet_worker).get("Status") == "healthy"
    assert stop(behind_init) == 0, logs(behind_init)


def test_worker_sigterm_loses_no_task(api, worker):
    # The image sets an 8 s shutdown grace. Short tasks finish within it;
    # long ones go back to PENDING uncounted and run again after the restart.
    texts = {}

    def submit(text, delay_ms=None):
        body = {"text": text}
        if delay_ms is not None:
            body["params"] = {"delay_ms": delay_ms}
        task = api.submit(body)
        texts[task["task_id"]] = text
        return task

    short = [submit(f"short task {index}", delay_ms=4000) for index in range(4)]
    long = [submit(f"long task {index}", delay_ms=20000) for index in range(4)]
    for task in long:
        api.wait_for_status(task["task_id"], "PROCESSING", timeout=30)

    exit_code = stop(worker.name)
    assert exit_code == 0, f"the worker exited {exit_code}; log:\n{logs(worker.name)}"
    assert "shutting down" in logs(worker.name, count=400)
    for task in short:
        after = api.get_task(task["task_id"])
        assert after["status"] == "COMPLETED", after
        assert after["attempts"] == 1
    for task in long:
        after = api.get_task(task["task_id"])
        assert after["status"] == "PENDING", after
        assert after["attempts"] == 0

    late = [submit(f"submitted while the worker was stopped {index}") for index in range(3)]
    for task in late:
        assert api.get_task(task["task_id"])["status"] == "PENDING"

    docker("start", worker.name)
    wait_healthz(worker.name, worker.port)
    for task_id, text in texts.items():
        done = api.wait_for_status(task_id, "COMPLETED")
        assert done["attempts"] == 1, done
        assert done["result"]["word_count"] == len(text.split()), done


def test_serve_keeps_tasks_in_its_volume():
    volume = f"conveyor-ct-{RUN_ID}-data"
    _volumes.append(volume)
    docker("volume", "create", "--label", f"{LABEL}={RUN_ID}", volume)
    mount = ["--volume", f"{volume}:/var/lib/conveyor"]

    port = free_port()
    env = {"CONVEYOR_LISTEN": f"127.0.0.1:{port}", "CONVEYOR_SIMULATED_DELAY": "0"}
    first = run_container("serve", "serve", env=env, options=mount)
    wait_healthz(first, port)
    task = Server(first, port).submit("kept across containers")
    done = Server(first, port).wait_for_status(task["task_id"], "COMPLETED")
    owner = docker("exec", first, "stat", "--format", "%u", "/var/lib/conveyor/conveyor.db")
    assert owner.stdout.strip() == "10001"
    assert stop(first) == 0, logs(first)
    remove_container(first)

    second = run_container("serve-again", "serve", env=env, options=mount)
    wait_healthz(second, port)
    again = Server(second, port).get_task(task["task_id"])
    assert again["status"] == "COMPLETED"
    assert again["result"] == done["result"]
    assert stop(second) == 0, logs(second)


def test_serve_healthz_after_start():
    """Starts serve a few times and records the time from docker run to the first 200."""
    samples = []
    for index in range(STARTUP_SAMPLES):
        port = free_port()
        started = time.monotonic()
        name = run_container(f"startup-{index}", "serve",
                             env={"CONVEYOR_LISTEN": f"127.0.0.1:{port}"})
        wait_healthz(name, port)
        samples.append(time.monotonic() - started)
        remove_container(name)
    _measurements["startup_seconds"] = samples
    _measurements["startup_median_seconds"] = statistics.median(samples)


def test_server_log_goes_to_stdout(api):
    completed = docker("logs", api.name)
    assert '"level":"info"' in completed.stdout, completed.stdout[-500:]
    assert completed.stderr == "", completed.stderr[-500:]


def test_client_command_keeps_stderr_apart():
    completed = docker("run", "--rm", "--network", "host", IMAGE, "get",
                       "--server", "http://127.0.0.1:9", "00000000-0000-7000-8000-000000000000",
                       check=False)
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert completed.stdout == ""
    assert completed.stderr != ""


def test_api_sigterm_exits_zero(api):
    exit_code = stop(api.name)
    assert exit_code == 0, f"the api exited {exit_code}; log:\n{logs(api.name)}"
