#include "cli/client_commands.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <system_error>
#include <utility>

#include "cli/api_client.hpp"
#include "cli/command_support.hpp"
#include "cli/exit_status.hpp"
#include "cli/server_address.hpp"
#include "cli/task_params.hpp"

namespace conveyor::cli {
namespace {

namespace json = boost::json;

constexpr std::array<std::string_view, 5> kClientCommands = {"submit", "get", "list", "cancel",
                                                             "retry"};
constexpr std::string_view kDefaultServer = "http://127.0.0.1:8080";

// Page size of `list --all` without --limit: the largest the API accepts.
constexpr int kAllPagesLimit = 100;
// `list --all` stops with an error after this many pages.
constexpr int kMaxPages = 1'000'000;
// Bound on the text that `submit` reads, so that an endless standard input
// cannot exhaust memory. The server's default limit is 1 MiB.
constexpr std::size_t kMaxTextBytes = std::size_t{1} << 30;

bool HasControlCharacter(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char c) {
        auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte == 0x7f;
    });
}

// Options that every client command takes.
struct ConnectionOptions {
    std::string server{kDefaultServer};
    std::string api_key;

    void Define(CLI::App& app) {
        app.add_option("--server", server,
                       "Base URL of the server: http only, with an optional port and path prefix")
            ->envname("CONVEYOR_SERVER")
            ->capture_default_str();
        app.add_option("--api-key", api_key, "API key, sent as 'Authorization: Bearer KEY'")
            ->envname("CONVEYOR_API_KEY");
    }
};

// Returns a client for the server that `options` name, or InvalidArgument
// with a message for the user.
Result<ApiClient> OpenApiClient(const ConnectionOptions& options) {
    Result<ServerAddress> server = ParseServerAddress(options.server);
    if (!server.ok()) {
        return server.status();
    }
    if (HasControlCharacter(options.api_key)) {
        return Status::InvalidArgument("invalid --api-key: it contains a control character");
    }
    return ApiClient(std::move(*server), options.api_key);
}

// Reads all of `in`. Returns InvalidArgument, naming `source`, when reading
// fails or the data exceeds kMaxTextBytes.
Result<std::string> ReadAll(std::istream& in, std::string_view source) {
    std::string data;
    std::array<char, 64 * 1024> chunk{};
    while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0) {
        data.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
        if (data.size() > kMaxTextBytes) {
            return Status::InvalidArgument("cannot read " + std::string(source) +
                                           ": larger than 1 GiB");
        }
    }
    if (in.bad()) {
        return Status::InvalidArgument("cannot read " + std::string(source));
    }
    return data;
}

class SubmitCommand {
  public:
    void Define(CLI::App& app);
    int Run(const CommandContext& context);

  private:
    Result<std::string> ReadText(std::istream& in) const;
    json::object BuildBody(std::string_view text, json::object params) const;

    ConnectionOptions connection_;
    std::string text_;
    std::string file_;
    std::vector<std::string> params_;
    std::string idempotency_key_;
    std::string type_;
    int max_attempts_ = 0;
    bool wait_ = false;
    CLI::Option* text_option_ = nullptr;
    CLI::Option* file_option_ = nullptr;
    CLI::Option* idempotency_key_option_ = nullptr;
    CLI::Option* type_option_ = nullptr;
    CLI::Option* max_attempts_option_ = nullptr;
};

void SubmitCommand::Define(CLI::App& app) {
    connection_.Define(app);
    text_option_ = app.add_option("text", text_, "The text to analyse; give TEXT or --file");
    file_option_ = app.add_option("--file", file_,
                                  "Read the text, byte for byte, from PATH; '-' is standard input")
                       ->type_name("PATH");
    app.add_option("--param", params_,
                   "Task parameter KEY=VALUE, repeatable; true, false and integers are sent as "
                   "JSON booleans and numbers, anything else as a string")
        ->type_name("KEY=VALUE")
        ->allow_extra_args(false);
    idempotency_key_option_ =
        app.add_option("--idempotency-key", idempotency_key_,
                       "Idempotency-Key header: a repeated submit with the same key and body "
                       "returns the first task instead of creating another");
    type_option_ =
        app.add_option("--type", type_, "Task type (the server's default: text.analyze)");
    max_attempts_option_ =
        app.add_option("--max-attempts", max_attempts_,
                       "Attempts before the task fails, 1 to 20 (default: the server's setting)");
    app.add_flag("--wait", wait_,
                 "Wait until the task is COMPLETED, FAILED or CANCELLED, then print it");
}

Result<std::string> SubmitCommand::ReadText(std::istream& in) const {
    if (text_option_->count() > 0) {
        return text_;
    }
    if (file_ == "-") {
        return ReadAll(in, "standard input");
    }
    std::error_code directory_error;
    if (std::filesystem::is_directory(file_, directory_error)) {
        return Status::InvalidArgument("cannot read --file '" + file_ + "': it is a directory");
    }
    std::ifstream file(file_, std::ios::binary);
    if (!file) {
        std::error_code error(errno, std::generic_category());
        return Status::InvalidArgument("cannot open --file '" + file_ + "': " + error.message());
    }
    return ReadAll(file, "--file '" + file_ + "'");
}

json::object SubmitCommand::BuildBody(std::string_view text, json::object params) const {
    json::object body;
    body["text"] = text;
    if (type_option_->count() > 0) {
        body["type"] = type_;
    }
    if (!params.empty()) {
        body["params"] = std::move(params);
    }
    if (max_attempts_option_->count() > 0) {
        body["max_attempts"] = max_attempts_;
    }
    return body;
}

int SubmitCommand::Run(const CommandContext& context) {
    // Every check that needs no input comes first, so that an invalid command
    // line does not consume standard input.
    if (text_option_->count() > 0 && file_option_->count() > 0) {
        return ReportUsageError(context, "give the text as TEXT or with --file, not both");
    }
    if (text_option_->count() == 0 && file_option_->count() == 0) {
        return ReportUsageError(context, "missing text: give it as TEXT or with --file");
    }
    Result<json::object> params = ParseParams(params_);
    if (!params.ok()) {
        return ReportUsageError(context, params.status().message());
    }
    if (HasControlCharacter(idempotency_key_)) {
        return ReportUsageError(context,
                                "invalid --idempotency-key: it contains a control character");
    }
    Result<ApiClient> api = OpenApiClient(connection_);
    if (!api.ok()) {
        return ReportUsageError(context, api.status().message());
    }
    Result<std::string> text = ReadText(context.console.in);
    if (!text.ok()) {
        return ReportUsageError(context, text.status().message());
    }

    ApiRequest request;
    request.method = HttpMethod::kPost;
    request.path_segments = {"v1", "tasks"};
    if (idempotency_key_option_->count() > 0) {
        request.headers.emplace_back("Idempotency-Key", idempotency_key_);
    }
    request.json_body = json::serialize(BuildBody(*text, std::move(*params)));
    // The serializer copies bytes as they are, so parsing the body back is
    // how invalid UTF-8 in the text, the type or a parameter is found.
    boost::system::error_code utf8_error;
    json::parse(*request.json_body, utf8_error);
    if (utf8_error) {
        return ReportUsageError(
            context,
            "the request is not valid UTF-8: check TEXT or the --file content, --type and --param");
    }

    ApiReply reply = CallApi(*api, request, context);
    if (reply.exit_status != kExitOk) {
        return reply.exit_status;
    }
    if (!wait_) {
        return PrintDocument(reply.body, context);
    }
    std::optional<std::string_view> task_id = StringMember(reply.document, "task_id");
    if (!task_id) {
        return ReportInvalidResponse(*api, context, "a task without a task_id");
    }
    // Copied before `reply` moves, because task_id points into it.
    const std::string id(*task_id);
    return WaitForTerminalStatus(*api, id, false, std::move(reply), context);
}

class GetCommand {
  public:
    void Define(CLI::App& app);
    int Run(const CommandContext& context);

  private:
    ConnectionOptions connection_;
    std::string task_id_;
    bool wait_ = false;
    bool include_text_ = false;
};

void GetCommand::Define(CLI::App& app) {
    connection_.Define(app);
    app.add_option("id", task_id_, "Task ID")->required();
    app.add_flag("--wait", wait_,
                 "Wait until the task is COMPLETED, FAILED or CANCELLED, then print it");
    app.add_flag("--include-text", include_text_, "Include the submitted text as \"text\"");
}

int GetCommand::Run(const CommandContext& context) {
    if (task_id_.empty()) {
        return ReportUsageError(context, "the task ID is empty");
    }
    Result<ApiClient> api = OpenApiClient(connection_);
    if (!api.ok()) {
        return ReportUsageError(context, api.status().message());
    }

    if (wait_) {
        return WaitForTerminalStatus(*api, task_id_, include_text_, std::nullopt, context);
    }
    ApiReply reply = CallApi(*api, GetTaskRequest(task_id_, include_text_, false), context);
    if (reply.exit_status != kExitOk) {
        return reply.exit_status;
    }
    return PrintDocument(reply.body, context);
}

class ListCommand {
  public:
    void Define(CLI::App& app);
    int Run(const CommandContext& context);

  private:
    ApiRequest PageRequest(const std::optional<std::string>& cursor) const;
    int RunAllPages(ApiClient& api, const CommandContext& context) const;

    ConnectionOptions connection_;
    std::string status_;
    std::string type_;
    int limit_ = 0;
    std::string order_;
    bool all_ = false;
    CLI::Option* status_option_ = nullptr;
    CLI::Option* type_option_ = nullptr;
    CLI::Option* limit_option_ = nullptr;
    CLI::Option* order_option_ = nullptr;
};

void ListCommand::Define(CLI::App& app) {
    connection_.Define(app);
    status_option_ = app.add_option("--status", status_,
                                    "Only tasks in this status, or in any of a comma-separated "
                                    "list such as PENDING,PROCESSING");
    type_option_ = app.add_option("--type", type_, "Only tasks of this type");
    limit_option_ = app.add_option("--limit", limit_,
                                   "Tasks per page, 1 to 100 (default: 20, or 100 with --all)");
    order_option_ =
        app.add_option("--order", order_, "Creation order: desc (newest first, the default) or asc")
            ->check(CLI::IsMember({"asc", "desc"}));
    app.add_flag("--all", all_,
                 "Fetch every page and print all tasks as one page with a null next_cursor");
}

ApiRequest ListCommand::PageRequest(const std::optional<std::string>& cursor) const {
    ApiRequest request;
    request.path_segments = {"v1", "tasks"};
    if (status_option_->count() > 0) {
        request.query.emplace_back("status", status_);
    }
    if (type_option_->count() > 0) {
        request.query.emplace_back("type", type_);
    }
    if (order_option_->count() > 0) {
        request.query.emplace_back("order", order_);
    }
    if (limit_option_->count() > 0) {
        request.query.emplace_back("limit", std::to_string(limit_));
    } else if (all_) {
        request.query.emplace_back("limit", std::to_string(kAllPagesLimit));
    }
    if (cursor) {
        request.query.emplace_back("cursor", *cursor);
    }
    return request;
}

int ListCommand::RunAllPages(ApiClient& api, const CommandContext& context) const {
    json::array items;
    std::optional<std::string> cursor;
    for (int page = 0; page < kMaxPages; ++page) {
        ApiReply reply = CallApi(api, PageRequest(cursor), context);
        if (reply.exit_status != kExitOk) {
            return reply.exit_status;
        }
        const json::object* object = reply.document.if_object();
        const json::value* page_items = object ? object->if_contains("items") : nullptr;
        if (page_items == nullptr || !page_items->is_array()) {
            return ReportInvalidResponse(api, context, "a page without an items array");
        }
        const json::array& page_array = page_items->get_array();
        items.insert(items.end(), page_array.begin(), page_array.end());

        const json::value* next_cursor = object->if_contains("next_cursor");
        if (next_cursor == nullptr || next_cursor->is_null()) {
            json::object all_pages{{"items", std::move(items)}, {"next_cursor", nullptr}};
            return PrintDocument(json::serialize(all_pages), context);
        }
        if (!next_cursor->is_string()) {
            return ReportInvalidResponse(api, context, "a next_cursor that is not a string");
        }
        if (cursor == next_cursor->get_string()) {
            return ReportInvalidResponse(api, context, "the same next_cursor twice in a row");
        }
        cursor = std::string(next_cursor->get_string());
    }
    context.console.err << context.name << ": stopped after " << kMaxPages
                        << " pages without reaching the last page\n";
    return kExitServerError;
}

int ListCommand::Run(const CommandContext& context) {
    Result<ApiClient> api = OpenApiClient(connection_);
    if (!api.ok()) {
        return ReportUsageError(context, api.status().message());
    }
    if (all_) {
        return RunAllPages(*api, context);
    }
    ApiReply reply = CallApi(*api, PageRequest(std::nullopt), context);
    if (reply.exit_status != kExitOk) {
        return reply.exit_status;
    }
    return PrintDocument(reply.body, context);
}

// `cancel ID` and `retry ID`: a POST to /v1/tasks/ID/<action>.
class TaskActionCommand {
  public:
    explicit TaskActionCommand(std::string action) : action_(std::move(action)) {}

    void Define(CLI::App& app);
    int Run(const CommandContext& context);

  private:
    std::string action_;
    ConnectionOptions connection_;
    std::string task_id_;
};

void TaskActionCommand::Define(CLI::App& app) {
    connection_.Define(app);
    app.add_option("id", task_id_, "Task ID")->required();
}

int TaskActionCommand::Run(const CommandContext& context) {
    if (task_id_.empty()) {
        return ReportUsageError(context, "the task ID is empty");
    }
    Result<ApiClient> api = OpenApiClient(connection_);
    if (!api.ok()) {
        return ReportUsageError(context, api.status().message());
    }

    ApiRequest request;
    request.method = HttpMethod::kPost;
    request.path_segments = {"v1", "tasks", task_id_, action_};
    ApiReply reply = CallApi(*api, request, context);
    if (reply.exit_status != kExitOk) {
        return reply.exit_status;
    }
    return PrintDocument(reply.body, context);
}

// Parses `args` (args[0] the program, args[1] the command) into `command`
// and runs it.
template <typename Command>
int ParseAndRun(Command& command, const std::string& description,
                const std::vector<std::string>& args, const Console& console) {
    CLI::App app(description, "conveyor " + args[1]);
    app.failure_message([](const CLI::App* failed_app, const CLI::Error& error) {
        return FormatUsageError(failed_app->get_name(), error.what());
    });
    command.Define(app);

    // CLI11 skips argv[0] as the program name, so the command name takes its place.
    std::vector<const char*> argv;
    for (std::size_t i = 1; i < args.size(); ++i) {
        argv.push_back(args[i].c_str());
    }
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& error) {
        // --help also arrives here, with exit code 0.
        return app.exit(error, console.out, console.err) == 0 ? kExitOk : kExitUsageError;
    }
    return command.Run(CommandContext{app.get_name(), console});
}

}  // namespace

bool IsClientCommand(std::string_view name) {
    return std::find(kClientCommands.begin(), kClientCommands.end(), name) != kClientCommands.end();
}

int RunClientCommand(int argc, char** argv) {
    std::vector<std::string> args(argv, argv + argc);
    return RunClientCommand(args, Console{std::cin, std::cout, std::cerr});
}

int RunClientCommand(const std::vector<std::string>& args, const Console& console) {
    if (args.size() < 2 || !IsClientCommand(args[1])) {
        console.err << "conveyor: expected a client command: submit, get, list, cancel or retry\n";
        return kExitUsageError;
    }
    const std::string& name = args[1];
    if (name == "submit") {
        SubmitCommand command;
        return ParseAndRun(command, "Submit a text for analysis and print the new task", args,
                           console);
    }
    if (name == "get") {
        GetCommand command;
        return ParseAndRun(command, "Print one task", args, console);
    }
    if (name == "list") {
        ListCommand command;
        return ParseAndRun(command, "Print a page of tasks, newest first by default", args,
                           console);
    }
    if (name == "cancel") {
        TaskActionCommand command("cancel");
        return ParseAndRun(command, "Cancel a PENDING or PROCESSING task and print it", args,
                           console);
    }
    TaskActionCommand command("retry");
    return ParseAndRun(command, "Send a FAILED or CANCELLED task back to PENDING and print it",
                       args, console);
}

}  // namespace conveyor::cli
