#pragma once

namespace conveyor::cli {

// Exit statuses of the client commands.
inline constexpr int kExitOk = 0;
// The server responded with a status outside 2xx, or with a body that is not JSON.
inline constexpr int kExitServerError = 1;
// The command line is invalid, so nothing was sent.
inline constexpr int kExitUsageError = 2;
// The server could not be reached: no connection, a failed name lookup, a
// timeout, or a connection that broke before the whole response arrived.
inline constexpr int kExitUnreachable = 3;

// Maps the status of an HTTP response to the exit status of the command.
constexpr int ExitStatusForHttpStatus(int http_status) {
    return http_status >= 200 && http_status <= 299 ? kExitOk : kExitServerError;
}

}  // namespace conveyor::cli
