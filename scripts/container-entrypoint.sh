#!/bin/sh
# The container image's entrypoint. A server command (serve, api, worker or
# migrate) writes its log to standard error; here that stream joins standard
# output, where container runtimes and log collectors expect a service's
# log. The client commands keep the two streams apart, as they do outside a
# container: results on standard output, a server's problem JSON on standard
# error. exec keeps conveyor as PID 1, so SIGTERM reaches it.
for argument in "$@"; do
    case "$argument" in
        -*) continue ;;
        serve | api | worker | migrate) exec /usr/local/bin/conveyor "$@" 2>&1 ;;
        *) break ;;
    esac
done
exec /usr/local/bin/conveyor "$@"
