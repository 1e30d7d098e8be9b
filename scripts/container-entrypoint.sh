#!/bin/sh
# The container image's entrypoint. A server command (serve, api, worker or
# migrate) writes its log to standard error, so this script joins that stream
# to standard output, where container runtimes expect a service's log.
# Client commands keep the two streams apart, as they do outside a container.
# exec keeps conveyor as PID 1, so SIGTERM reaches it.
# NOTE: the command is the first argument that does not start with "-", so a
# flag given before the command with a separate value (--log-level debug
# serve) leaves the log on standard error; put flags after the command.
for argument in "$@"; do
    case "$argument" in
        -*) continue ;;
        serve | api | worker | migrate) exec /usr/local/bin/conveyor "$@" 2>&1 ;;
        *) break ;;
    esac
done
exec /usr/local/bin/conveyor "$@"
