"""A description of the machine and the software versions behind a benchmark run."""

import json
import os
import pathlib
import platform
import re
import subprocess

from . import services

PYTHON_PACKAGES = ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools",
                   "celery", "kombu", "billiard", "redis", "psycopg2")
# Header-only libraries the build uses, found by a header each installs.
HEADER_FILES = ("/usr/include/boost/version.hpp", "/usr/include/CLI/CLI.hpp",
                "/usr/include/benchmark/benchmark.h")
COMMAND_TIMEOUT_S = 30


def _run(argv):
    """Return the stripped stdout of argv, or None when it fails."""
    try:
        completed = subprocess.run(argv, capture_output=True, text=True,
                                   timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return (completed.stdout or completed.stderr).strip()


def _first_line(text):
    return text.splitlines()[0].strip() if text else None


def cpu_description():
    models = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    models.append(line.split(":", 1)[1].strip())
    except OSError:
        pass
    return {
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "model": models[0] if models else platform.processor(),
    }


def memory_bytes():
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def _mount_of(path):
    """Return (device, mount point, filesystem type) of the mount holding path."""
    path = os.path.realpath(path)
    best = ("", "", "")
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
        for line in mounts:
            device, mount_point, fs_type = line.split()[:3]
            inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best[1]):
                best = (device, mount_point, fs_type)
    return best


def _block_device_facts(device):
    """Return the rotational flag, model and size of a block device from /sys."""
    name = pathlib.Path(os.path.realpath(device)).name
    sys_block = pathlib.Path("/sys/class/block") / name
    facts = {}
    if not sys_block.exists():
        return facts
    # A partition's queue settings sit on its parent disk.
    disk = sys_block.resolve()
    if (disk / "partition").exists():
        disk = disk.parent
    for key, relative in (("rotational", "queue/rotational"), ("model", "device/model"),
                          ("sectors", "size")):
        try:
            facts[key] = (disk / relative).read_text().strip()
        except OSError:
            pass
    if "sectors" in facts:
        facts["size_bytes"] = int(facts.pop("sectors")) * 512
    return facts


def disk_description(path):
    device, mount_point, fs_type = _mount_of(path)
    statvfs = os.statvfs(path)
    description = {
        "path": str(path),
        "device": device,
        "mount_point": mount_point,
        "filesystem": fs_type,
        "filesystem_size_bytes": statvfs.f_frsize * statvfs.f_blocks,
        "filesystem_free_bytes": statvfs.f_frsize * statvfs.f_bavail,
    }
    description.update(_block_device_facts(device))
    return description


def _debian_package_of(path):
    output = _run(["dpkg-query", "--search", path])
    if not output:
        return None
    return output.splitlines()[0].split(":")[0].split(",")[0].strip()


def _debian_version(package):
    return _run(["dpkg-query", "--show", "--showformat=${Version}", package])


def library_versions(binary):
    """Return the Debian package and version of each library binary links directly."""
    needed = []
    dynamic = _run(["readelf", "--dynamic", str(binary)]) or ""
    for match in re.finditer(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic):
        needed.append(match.group(1))
    resolved = {}
    for line in (_run(["ldd", str(binary)]) or "").splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and parts[1].strip().startswith("/"):
            resolved[parts[0].strip()] = parts[1].split()[0]
    versions = {}
    paths = [resolved[name] for name in needed if name in resolved]
    for path in [*paths, *(header for header in HEADER_FILES if os.path.exists(header))]:
        package = _debian_package_of(os.path.realpath(path)) or _debian_package_of(path)
        if package and package not in versions:
            versions[package] = _debian_version(package)
    return versions


def python_package_versions():
    script = ("import importlib.metadata as m, json\n"
              f"names = {list(PYTHON_PACKAGES)!r}\n"
              "found = {}\n"
              "for name in names:\n"
              "    try:\n"
              "        found[name] = m.version(name)\n"
              "    except m.PackageNotFoundError:\n"
              "        found[name] = None\n"
              "print(json.dumps(found))\n")
    output = _run([services.SYSTEM_PYTHON, "-c", script])
    if output is None:
        return {}
    return json.loads(output)


def compiler_version(build_dir):
    cache = pathlib.Path(build_dir) / "CMakeCache.txt"
    try:
        text = cache.read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.+)$", text, re.MULTILINE)
    build_type = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", text, re.MULTILINE)
    compiler = _first_line(_run([match.group(1), "--version"])) if match else None
    return {"compiler": compiler, "build_type": build_type.group(1) if build_type else None}


def git_revision():
    revision = _run(["git", "-C", str(services.REPOSITORY), "rev-parse", "HEAD"])
    status = _run(["git", "-C", str(services.REPOSITORY), "status", "--porcelain",
                   "--untracked-files=no"])
    return {"commit": revision, "modified_files": len(status.splitlines()) if status else 0}


def describe(binary, build_dir, data_dir):
    """Return the machine, disk and software facts of this run."""
    postgres = services.pg_cluster.PG_BIN / "postgres"
    return {
        "cpu": cpu_description(),
        "memory_bytes": memory_bytes(),
        "kernel": f"{platform.system()} {platform.release()}",
        "os": _os_release(),
        "data_disk": disk_description(data_dir),
        "conveyor": {"binary": str(binary), **git_revision(), **(compiler_version(build_dir) or {})},
        "libraries": library_versions(binary),
        "postgres": _first_line(_run([str(postgres), "--version"])),
        "redis": _first_line(_run(["redis-server", "--version"])),
        "wrk": _first_line(_run(["dpkg-query", "--show", "--showformat=${Version}", "wrk"])),
        "gnuplot": _first_line(_run(["gnuplot", "--version"])),
        "python": _first_line(_run([services.SYSTEM_PYTHON, "--version"])),
        "python_packages": python_package_versions(),
    }


def _os_release():
    try:
        text = pathlib.Path("/etc/os-release").read_text()
    except OSError:
        return None
    match = re.search(r'^PRETTY_NAME="?(.*?)"?$', text, re.MULTILINE)
    return match.group(1) if match else None
