#include "cli/command_support.hpp"

#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <utility>

#include "cli/exit_status.hpp"

namespace conveyor::cli {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// The server keeps a long poll open for up to kLongPollSeconds, and the read
// timeout adds a margin for a slow database or network.
constexpr int kLongPollSeconds = 60;
constexpr std::chrono::milliseconds kLongPollTimeout{(kLongPollSeconds + 30) * 1000};
// A poll that returns sooner than this without a terminal status is followed
// by a pause, so that a server that does not hold long polls is not polled in
// a tight loop.
constexpr std::chrono::milliseconds kMinPollInterval{1000};
// --wait gives up after this long with exit status 1.
constexpr std::chrono::hours kMaxWait{24};
// A long poll that gets 429 is sent again after the Retry-After delay, but
// never sooner than this. So kMaxWait allows at most kMaxRateLimitedRetries
// retries of one poll.
constexpr std::chrono::seconds kMinRetryDelay{1};
constexpr std::int64_t kMaxRateLimitedRetries = kMaxWait / kMinRetryDelay;
constexpr int kTooManyRequests = 429;

std::string TrimTrailingWhitespace(std::string text) {
    std::size_t end = text.find_last_not_of(" \t\r\n");
    text.erase(end == std::string::npos ? 0 : end + 1);
    return text;
}

bool IsTerminalStatus(std::string_view status) {
    return status == "COMPLETED" || status == "FAILED" || status == "CANCELLED";
}

// Returns the seconds from now until an HTTP-date in any of the three forms
// that RFC 9110 asks a recipient to read ("Sun, 06 Nov 1994 08:49:37 GMT",
// "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"), or nullopt
// when `value` is none of them. A date in the past gives 0.
std::optional<std::int64_t> SecondsUntilHttpDate(std::string_view value) {
    const std::string text(value);
    std::tm parts{};
    bool parsed = false;
    for (const char* format :
         {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
        parts = std::tm{};
        const char* end = strptime(text.c_str(), format, &parts);
        if (end != nullptr && *end == '\0') {
            parsed = true;
            break;
        }
    }
    if (!parsed) {
        return std::nullopt;
    }
    const std::time_t at = timegm(&parts);
    const std::time_t now = std::time(nullptr);
    return at > now ? static_cast<std::int64_t>(at - now) : 0;
}

// Returns the delay in a Retry-After value, delay-seconds or an HTTP-date,
// at least kMinRetryDelay and at most kMaxWait. A missing or invalid value
// gives kMinRetryDelay.
std::chrono::seconds RetryAfterDelay(std::string_view value) {
    const std::chrono::seconds max_delay = kMaxWait;
    std::uint64_t seconds = 0;
    const auto parsed = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (value.empty() || parsed.ptr != value.data() + value.size()) {
        const std::optional<std::int64_t> until = SecondsUntilHttpDate(value);
        if (!until) {
            return kMinRetryDelay;
        }
        seconds = static_cast<std::uint64_t>(*until);
    }
    if (parsed.ec == std::errc::result_out_of_range ||
        seconds > static_cast<std::uint64_t>(max_delay.count())) {
        return max_delay;
    }
    return std::max(kMinRetryDelay, std::chrono::seconds(static_cast<std::int64_t>(seconds)));
}

// Classifies the result of ApiClient::Send as CallApi describes.
ApiReply ClassifyResponse(const ApiClient& api, Result<HttpResponse> response,
                          const CommandContext& context) {
    ApiReply reply;
    if (!response.ok()) {
        context.console.err << context.name << ": cannot reach the server at "
                            << api.server().ToUrl() << ": " << response.status().message() << "\n";
        reply.exit_status = kExitUnreachable;
        return reply;
    }

    reply.body = TrimTrailingWhitespace(std::move(response->body));
    boost::system::error_code parse_error;
    reply.document = json::parse(reply.body, parse_error);
    reply.exit_status = ExitStatusForHttpStatus(response->status);
    if (reply.exit_status != kExitOk) {
        if (parse_error) {
            context.console.err << context.name << ": the server at " << api.server().ToUrl()
                                << " responded with HTTP " << response->status << " "
                                << response->reason << " without a JSON body\n";
        } else {
            context.console.err << reply.body << "\n";
        }
        return reply;
    }
    if (parse_error) {
        reply.exit_status = ReportInvalidResponse(
            api, context,
            "HTTP " + std::to_string(response->status) + " with a body that is not JSON");
    }
    return reply;
}

// Sends a long poll, and sends it again after the Retry-After delay while
// the server responds with 429 and the delay ends before `deadline`. The
// server sends 429 to a long poll over its bound of waiting long polls,
// which frees a place as soon as another one ends, and to a tenant over its
// request rate.
ApiReply CallLongPoll(ApiClient& api, const ApiRequest& request, Clock::time_point deadline,
                      const CommandContext& context) {
    for (std::int64_t retry = 0;; ++retry) {
        Result<HttpResponse> response = api.Send(request);
        if (!response.ok() || response->status != kTooManyRequests ||
            retry >= kMaxRateLimitedRetries) {
            return ClassifyResponse(api, std::move(response), context);
        }
        const std::chrono::seconds delay = RetryAfterDelay(response->retry_after);
        if (Clock::now() + delay >= deadline) {
            return ClassifyResponse(api, std::move(response), context);
        }
        boost::system::error_code parse_error;
        const json::value problem = json::parse(response->body, parse_error);
        const std::optional<std::string_view> code = StringMember(problem, "code");
        context.console.err << context.name << ": the server responded with HTTP 429"
                            << (code ? " " + std::string(*code) : std::string()) << "; retrying in "
                            << delay.count() << " s\n";
        std::this_thread::sleep_for(delay);
    }
}

}  // namespace

std::string FormatUsageError(const std::string& command, std::string_view message) {
    return command + ": " + std::string(message) + "\nRun '" + command +
           " --help' for more information.\n";
}

int ReportUsageError(const CommandContext& context, std::string_view message) {
    context.console.err << FormatUsageError(context.name, message);
    return kExitUsageError;
}

int ReportInvalidResponse(const ApiClient& api, const CommandContext& context,
                          std::string_view problem) {
    context.console.err << context.name << ": invalid response from the server at "
                        << api.server().ToUrl() << ": " << problem << "\n";
    return kExitServerError;
}

ApiReply CallApi(ApiClient& api, const ApiRequest& request, const CommandContext& context) {
    return ClassifyResponse(api, api.Send(request), context);
}

int PrintDocument(std::string_view body, const CommandContext& context) {
    context.console.out << body << "\n";
    context.console.out.flush();
    return kExitOk;
}

std::optional<std::string_view> StringMember(const json::value& document, std::string_view name) {
    const json::object* object = document.if_object();
    if (object == nullptr) {
        return std::nullopt;
    }
    const json::value* member = object->if_contains(name);
    if (member == nullptr || !member->is_string()) {
        return std::nullopt;
    }
    return std::string_view(member->get_string());
}

ApiRequest GetTaskRequest(const std::string& task_id, bool include_text, bool long_poll) {
    ApiRequest request;
    request.path_segments = {"v1", "tasks", task_id};
    if (long_poll) {
        request.query.emplace_back("wait", std::to_string(kLongPollSeconds));
        request.timeout = kLongPollTimeout;
    }
    if (include_text) {
        request.query.emplace_back("include", "text");
    }
    return request;
}

int WaitForTerminalStatus(ApiClient& api, const std::string& task_id, bool include_text,
                          std::optional<ApiReply> reply, const CommandContext& context) {
    const Clock::time_point deadline = Clock::now() + kMaxWait;
    std::optional<Clock::time_point> last_poll;
    while (true) {
        if (reply) {
            std::optional<std::string_view> status = StringMember(reply->document, "status");
            if (!status) {
                return ReportInvalidResponse(api, context, "a task without a status");
            }
            if (IsTerminalStatus(*status)) {
                return PrintDocument(reply->body, context);
            }
            if (Clock::now() >= deadline) {
                context.console.err << context.name << ": stopped waiting after "
                                    << kMaxWait.count() << " hours; task " << task_id
                                    << " is still " << *status << "\n";
                return kExitServerError;
            }
        }

        if (last_poll) {
            Clock::duration since_last_poll = Clock::now() - *last_poll;
            if (since_last_poll < kMinPollInterval) {
                std::this_thread::sleep_for(kMinPollInterval - since_last_poll);
            }
        }
        last_poll = Clock::now();
        reply = CallLongPoll(api, GetTaskRequest(task_id, include_text, true), deadline, context);
        if (reply->exit_status != kExitOk) {
            return reply->exit_status;
        }
    }
}

}  // namespace conveyor::cli
