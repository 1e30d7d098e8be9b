"""Checks deploy/compose.yaml with `docker-compose config`, offline.

`docker-compose config` (Debian's docker-compose package, Compose 1.29)
validates the file against the Compose schema and prints it resolved, with
anchors merged and variables filled in, without a Docker daemon. The tests
then check the resolved file for the start order, the health checks and the
stop grace periods that the deployment depends on. Nothing here starts a
container or creates a network.
"""

import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPOSITORY / "deploy" / "compose.yaml"
API_KEYS_FILE = REPOSITORY / "deploy" / "compose.api-keys.yaml"
DOCKER_COMPOSE = os.environ.get("CONVEYOR_DOCKER_COMPOSE") or shutil.which("docker-compose")

CONVEYOR_SERVICES = ("migrate", "api-1", "api-2", "worker")
LONG_RUNNING_SERVICES = ("api-1", "api-2", "worker")
DURATION_PATTERN = re.compile(r"^(?:(\d+)m)?(?:(\d+)s)?$")

pytestmark = pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose is not installed")


def run_config(*compose_files, args=()):
    """Runs `docker-compose -f FILE... config ARGS` with no variables of the caller's shell."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    file_flags = [flag for path in compose_files for flag in ("-f", str(path))]
    return subprocess.run(
        [DOCKER_COMPOSE, *file_flags, "config", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def to_seconds(duration):
    """Converts a Compose duration such as `45s` or `1m30s` to seconds."""
    match = DURATION_PATTERN.match(duration)
    assert match is not None and duration, f"unexpected duration {duration!r}"
    minutes, whole_seconds = match.groups()
    return int(minutes or 0) * 60 + int(whole_seconds or 0)


def port_entries(service):
    """Returns a service's published ports as dicts, from the short form
    (`127.0.0.1:8080:8080/tcp`, which docker-compose 1.29 prints) or the
    long form (which Compose v2 prints)."""
    entries = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            entries.append({"host_ip": port.get("host_ip"), "published": str(port["published"]),
                            "target": int(port["target"])})
            continue
        *host, published, target = port.split("/")[0].split(":")
        entries.append({"host_ip": host[0] if host else None, "published": published, "target": int(target)})
    return entries


def volume_entries(service):
    """Returns a service's mounts as dicts, from the short form
    (`SOURCE:TARGET:MODE`) or the long form."""
    entries = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            entries.append({"source": volume["source"], "target": volume["target"],
                            "read_only": bool(volume.get("read_only", False))})
            continue
        source, target, *mode = volume.split(":")
        entries.append({"source": source, "target": target, "read_only": mode == ["ro"]})
    return entries


@pytest.fixture(scope="module")
def resolved():
    result = run_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def write_broken_copy(tmp_path, old, new):
    text = COMPOSE_FILE.read_text()
    assert old in text, f"{old!r} is no longer in compose.yaml; update the test"
    broken = tmp_path / "compose.yaml"
    broken.write_text(text.replace(old, new, 1))
    return broken


def test_config_quiet_accepts_file():
    result = run_config(COMPOSE_FILE, args=["-q"])
    assert result.returncode == 0, result.stderr


def test_config_rejects_misspelled_key(tmp_path):
    broken = write_broken_copy(tmp_path, "stop_grace_period: 45s", "stop_grace_periods: 45s")
    result = run_config(broken, args=["-q"])
    assert result.returncode != 0
    assert "stop_grace_periods" in result.stderr


def test_config_rejects_wrong_type(tmp_path):
    broken = write_broken_copy(tmp_path, "replicas: 3", "replicas: three")
    result = run_config(broken, args=["-q"])
    assert result.returncode != 0
    assert "replicas" in result.stderr


def test_services_are_the_expected_set(resolved):
    assert set(resolved["services"]) == {"postgres", *CONVEYOR_SERVICES}


def test_three_worker_replicas(resolved):
    assert resolved["services"]["worker"]["deploy"]["replicas"] == 3


def test_postgres_health_check_uses_pg_isready(resolved):
    postgres = resolved["services"]["postgres"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert postgres["image"].startswith("postgres:")


def test_postgres_data_on_named_volume(resolved):
    mounts = volume_entries(resolved["services"]["postgres"])
    data_mounts = [mount for mount in mounts if mount["target"] == "/var/lib/postgresql/data"]
    assert len(data_mounts) == 1
    assert data_mounts[0]["source"] in resolved["volumes"]


def test_migrate_waits_for_healthy_postgres(resolved):
    migrate = resolved["services"]["migrate"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"


@pytest.mark.parametrize("service", LONG_RUNNING_SERVICES)
def test_service_waits_for_migration(resolved, service):
    depends_on = resolved["services"][service]["depends_on"]
    assert depends_on == {"migrate": {"condition": "service_completed_successfully"}}


@pytest.mark.parametrize("service", CONVEYOR_SERVICES)
def test_stop_grace_exceeds_shutdown_grace(resolved, service):
    definition = resolved["services"][service]
    shutdown_grace = to_seconds(definition["environment"]["CONVEYOR_SHUTDOWN_GRACE"])
    assert to_seconds(definition["stop_grace_period"]) > shutdown_grace


@pytest.mark.parametrize("service", CONVEYOR_SERVICES)
def test_service_uses_postgres(resolved, service):
    database = resolved["services"][service]["environment"]["CONVEYOR_DATABASE"]
    assert database.startswith("postgresql://")
    assert "@postgres:5432/" in database


@pytest.mark.parametrize("service", CONVEYOR_SERVICES)
def test_service_filesystem_is_read_only(resolved, service):
    assert resolved["services"][service]["read_only"] is True


def test_image_built_from_repository_dockerfile(resolved):
    build = resolved["services"]["migrate"]["build"]
    assert pathlib.Path(build["context"]).resolve() == REPOSITORY
    assert build["dockerfile"] == "Dockerfile"


@pytest.mark.parametrize("service", CONVEYOR_SERVICES)
def test_service_runs_the_built_image(resolved, service):
    assert resolved["services"][service]["image"] == resolved["services"]["migrate"]["image"]


@pytest.mark.parametrize("service,command", [("api-1", "api"), ("api-2", "api"), ("worker", "worker")])
def test_service_command(resolved, service, command):
    assert resolved["services"][service]["command"] == [command]


@pytest.mark.parametrize("service,host_port", [("api-1", "8080"), ("api-2", "8081")])
def test_api_published_on_loopback(resolved, service, host_port):
    ports = port_entries(resolved["services"][service])
    assert len(ports) == 1
    assert ports[0]["target"] == 8080
    assert ports[0]["published"] == host_port
    assert ports[0]["host_ip"] == "127.0.0.1"


def test_worker_serves_health_checks(resolved):
    environment = resolved["services"]["worker"]["environment"]
    assert environment["CONVEYOR_METRICS_LISTEN"] == "0.0.0.0:9090"
    assert "ports" not in resolved["services"]["worker"]


def test_api_keys_override_is_valid():
    result = run_config(COMPOSE_FILE, API_KEYS_FILE, args=["-q"])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("service", ["api-1", "api-2"])
def test_api_keys_override_mounts_file(service):
    result = run_config(COMPOSE_FILE, API_KEYS_FILE)
    assert result.returncode == 0, result.stderr
    definition = yaml.safe_load(result.stdout)["services"][service]
    keys_path = definition["environment"]["CONVEYOR_API_KEYS_FILE"]
    mounts = [mount for mount in volume_entries(definition) if mount["target"] == keys_path]
    assert len(mounts) == 1
    assert pathlib.Path(mounts[0]["source"]) == REPOSITORY / "deploy" / "api-keys"
    assert mounts[0]["read_only"] is True
