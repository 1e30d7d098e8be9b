#!/bin/bash
# The container image's HEALTHCHECK: exits 0 when the conveyor server in this
# container returns 200 for GET /healthz, and 1 otherwise.
#
# It finds the command (serve, api or worker) and any --listen or
# --metrics-listen flag on the command line of PID 1, which is conveyor
# itself or an init that runs it (docker run --init). Without such a flag it
# reads CONVEYOR_LISTEN or CONVEYOR_METRICS_LISTEN, as conveyor does. The
# request goes through bash's /dev/tcp, because the slim image has no curl.
set -u

command=""
listen=""
metrics_listen=""
previous=""
while IFS= read -r -d '' argument; do
    case "$previous" in
        --listen) listen="$argument" ;;
        --metrics-listen) metrics_listen="$argument" ;;
    esac
    case "$argument" in
        serve | api | worker | migrate) [ -z "$command" ] && command="$argument" ;;
        --listen=*) listen="${argument#--listen=}" ;;
        --metrics-listen=*) metrics_listen="${argument#--metrics-listen=}" ;;
    esac
    previous="$argument"
done </proc/1/cmdline

case "$command" in
    serve | api)
        address="${listen:-${CONVEYOR_LISTEN:-127.0.0.1:8080}}"
        ;;
    worker)
        address="${metrics_listen:-${CONVEYOR_METRICS_LISTEN:-}}"
        if [ -z "$address" ]; then
            # Nothing to ask: the container runs as long as the worker does.
            echo "this worker serves no /healthz; set CONVEYOR_METRICS_LISTEN to check it"
            exit 0
        fi
        ;;
    *)
        echo "PID 1 runs no conveyor server command (serve, api or worker)"
        exit 1
        ;;
esac

# Split HOST:PORT or [IPV6]:PORT, and reach a wildcard address through loopback.
port="${address##*:}"
host="${address%:*}"
host="${host#[}"
host="${host%]}"
case "$host" in
    "" | 0.0.0.0) host=127.0.0.1 ;;
    ::) host=::1 ;;
esac
if [ "$port" = "0" ]; then
    echo "the server listens on a port picked at start (port 0); its listening log line names it"
    exit 1
fi
host_header="$host:$port"
if [[ "$host" == *:* ]]; then
    host_header="[$host]:$port"
fi

if ! exec 3<>"/dev/tcp/$host/$port"; then
    echo "cannot connect to $host_header"
    exit 1
fi
printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host_header" >&3
status_line=""
IFS= read -r -t 2 status_line <&3
exec 3<&-
case "$status_line" in
    "HTTP/1."[01]" 200 "*) exit 0 ;;
esac
echo "GET /healthz on $host_header returned: ${status_line%$'\r'}"
exit 1
