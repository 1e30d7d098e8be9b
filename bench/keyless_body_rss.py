"""Measure the server's memory while clients send large bodies without a key.

Usage: keyless_body_rss.py BINARY WORKDIR [CONNECTIONS] [BODY_BYTES]

Starts `BINARY api` on 127.0.0.1 port 0 with an API keys file. Then it opens
CONNECTIONS connections at once, and each sends one keyless POST /v1/tasks
with a body of BODY_BYTES (6,000,000 by default) without waiting for an
answer. It prints the server's VmRSS before, its peak (VmHWM), its VmRSS
after, and the status codes received. Every loop is bounded: one request
per connection and 60 s socket timeouts.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

STARTUP_TIMEOUT_S = 20
SOCKET_TIMEOUT_S = 60


def start_server(binary, workdir):
    """Start `conveyor api` with one key; returns the process and its port."""
    keys = os.path.join(workdir, "keys")
    if not os.path.exists(keys):
        subprocess.run([binary, "keys", "add", "--tenant", "alpha", "--api-keys-file", keys],
                       check=True, capture_output=True, timeout=30)
    database = "sqlite:" + os.path.join(workdir, "rss.db")
    process = subprocess.Popen(
        [binary, "api", "--listen", "127.0.0.1:0", "--database", database, "--api-keys-file", keys,
         "--log-format", "json", "--max-connections", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("msg") == "listening":
            # Keep reading the log so that the pipe never fills.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, int(record["port"])
    process.kill()
    raise SystemExit("the server did not log a listening line")


def status_kib(pid, field):
    """Return a field of /proc/PID/status, such as VmRSS, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def send_keyless_request(port, request, barrier, statuses, lock):
    """Send one request on its own connection and record the status code."""
    status = "no response"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
            barrier.wait(timeout=SOCKET_TIMEOUT_S)
            try:
                sock.sendall(request)
            except OSError:
                pass  # the server may close before the whole body is sent
            head = sock.recv(200)
            if head.startswith(b"HTTP/1.1 "):
                status = head.split(b" ")[1].decode()
    except OSError as error:
        status = type(error).__name__
    with lock:
        statuses.append(status)


def main():
    binary, workdir = sys.argv[1], sys.argv[2]
    connections = int(sys.argv[3]) if len(sys.argv) > 3 else 150
    body_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 6_000_000
    os.makedirs(workdir, exist_ok=True)

    process, port = start_server(binary, workdir)
    time.sleep(0.5)
    before = status_kib(process.pid, "VmRSS")

    header = (f"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              f"Content-Length: {body_bytes}\r\n\r\n").encode()
    request = header + b"a" * body_bytes
    statuses = []
    lock = threading.Lock()
    barrier = threading.Barrier(connections)
    threads = [threading.Thread(target=send_keyless_request,
                                args=(port, request, barrier, statuses, lock))
               for _ in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * SOCKET_TIMEOUT_S)
    elapsed = time.monotonic() - started

    time.sleep(1)
    peak = status_kib(process.pid, "VmHWM")
    after = status_kib(process.pid, "VmRSS")
    process.terminate()
    process.wait(timeout=30)
    print(json.dumps({
        "connections": connections,
        "body_bytes": body_bytes,
        "rss_before_mib": round(before / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "statuses": {status: statuses.count(status) for status in sorted(set(statuses))},
        "seconds": round(elapsed, 2),
    }))


if __name__ == "__main__":
    main()
