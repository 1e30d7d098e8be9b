#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cli/api_client.hpp"
#include "cli/client_commands.hpp"
#include "cli/exit_status.hpp"

// Steps that the client commands share: calling the API, classifying the
// response, printing it and waiting for a task to finish.
namespace conveyor::cli {

// The name of the running command ("conveyor submit") and its streams.
struct CommandContext {
    std::string name;
    const Console& console;
};

// Formats a usage error as the command name, the message and a pointer to
// --help, over two lines.
std::string FormatUsageError(const std::string& command, std::string_view message);

// Writes a usage error on the error stream and returns kExitUsageError.
int ReportUsageError(const CommandContext& context, std::string_view message);

// Writes that the server's response cannot be used, and why, on the error
// stream and returns kExitServerError.
int ReportInvalidResponse(const ApiClient& api, const CommandContext& context,
                          std::string_view problem);

// The response to one API call, classified the way the commands report it.
struct ApiReply {
    int exit_status = kExitOk;
    std::string body;             // without trailing whitespace
    boost::json::value document;  // the parsed body when exit_status is kExitOk
};

// Sends `request`. A 2xx response with a JSON body gives kExitOk and the
// parsed document. Otherwise CallApi writes the problem document of an error
// status, or a one-line message naming the server, on the error stream and
// sets exit_status to kExitServerError or kExitUnreachable.
ApiReply CallApi(ApiClient& api, const ApiRequest& request, const CommandContext& context);

// Writes `body` and a newline on the output stream and returns kExitOk.
int PrintDocument(std::string_view body, const CommandContext& context);

// Returns the string member `name` of `document`, or nothing when the
// document is not an object or the member is missing or not a string.
std::optional<std::string_view> StringMember(const boost::json::value& document,
                                             std::string_view name);

// Builds GET /v1/tasks/{task_id}. With `long_poll`, the request carries
// wait=60 and a read timeout that outlasts the server's wait.
ApiRequest GetTaskRequest(const std::string& task_id, bool include_text, bool long_poll);

// Long-polls the task until its status is COMPLETED, FAILED or CANCELLED,
// starting from the representation in `reply`, or with a poll when it is
// empty, then prints it. A poll answered 429 is sent again after its
// Retry-After delay, with a line on the error stream. Returns the exit
// status: any other failure of a poll ends the wait, and so do 24 hours
// without a terminal status (exit status 1).
int WaitForTerminalStatus(ApiClient& api, const std::string& task_id, bool include_text,
                          std::optional<ApiReply> reply, const CommandContext& context);

}  // namespace conveyor::cli
