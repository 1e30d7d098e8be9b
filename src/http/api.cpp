#include "http/api.hpp"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <cmath>
#include <map>

#include "core/blocking.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/trace_context.hpp"
#include "http/cursor.hpp"
#include "http/openapi_document.hpp"
#include "http/router.hpp"
#include "http/task_json.hpp"

namespace conveyor::http {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;

namespace {

constexpr int kMaxListLimit = 100;
constexpr int kDefaultListLimit = 20;
constexpr double kMaxWaitSeconds = 60;
constexpr int kIdCollisionRetries = 3;
constexpr std::string_view kUnavailableRetryAfter = "1";
// The pending count is refreshed every second, so a rejected submission may
// succeed a second later.
constexpr std::string_view kPendingRetryAfter = "1";
// A long poll over its bound may find a free place as soon as another ends.
constexpr std::string_view kWaitLimitedRetryAfter = "1";
// Responses up to this size are sent without a reservation of the tenant's
// memory budget.
constexpr std::size_t kSmallResponseBytes = 4 * 1024;

// A task read from the store, with its JSON as GET /v1/tasks/{id} sends it.
struct RenderedTask {
    Task task;
    std::string json;
};

// The tenant of every request while authentication is off.
constexpr std::string_view kDefaultTenant = "";

Response MakeJsonResponse(beast_http::status status, std::string body, const Request& request) {
    Response response{status, request.version()};
    response.set(beast_http::field::content_type, "application/json");
    response.keep_alive(request.keep_alive());
    response.body() = std::move(body);
    response.prepare_payload();
    return response;
}

Response MakeProblem(ErrorCode code, std::string detail, const Request& request) {
    return MakeProblemResponse(Problem{code, std::move(detail), {}}, request.version(),
                               request.keep_alive());
}

// Maps a storage failure that the handler did not expect to 503 or 500.
Response MakeStorageProblem(const Status& status, const Request& request,
                            std::string_view request_id) {
    if (status.code() == StatusCode::kUnavailable) {
        log::Warn("http", "database unavailable",
                  {{"request_id", request_id}, {"error", status.message()}});
        Response response = MakeProblem(
            ErrorCode::kUnavailable, "The database cannot be reached. Try again shortly.", request);
        response.set(beast_http::field::retry_after, kUnavailableRetryAfter);
        return response;
    }
    log::Error("http", "database operation failed",
               {{"request_id", request_id}, {"error", status.message()}});
    return MakeProblem(ErrorCode::kInternalError, "The request failed unexpectedly.", request);
}

// Accepts "application/json" with no parameters or with charset=utf-8, in
// any case and with optional white space.
bool IsJsonMediaType(std::string_view content_type) {
    std::string lowered;
    for (const char c : content_type) {
        if (c != ' ' && c != '\t') {
            lowered.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        }
    }
    return lowered == "application/json" || lowered == "application/json;charset=utf-8" ||
           lowered == "application/json;charset=\"utf-8\"";
}

bool IsValidIdempotencyKey(std::string_view key) {
    return !key.empty() && key.size() <= 255 &&
           std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
}

std::string LowerCase(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::optional<int> ParseInteger(std::string_view text) {
    int value = 0;
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), value);
    if (parsed.ec != std::errc() || parsed.ptr != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// Returns the token of an "Authorization: Bearer TOKEN" value, with the
// scheme in any case (RFC 9110, section 11.1), or nullopt for any other
// value.
std::optional<std::string_view> BearerToken(std::string_view value) {
    constexpr std::string_view kScheme = "bearer";
    if (value.size() <= kScheme.size() ||
        !boost::beast::iequals(value.substr(0, kScheme.size()), kScheme) ||
        value[kScheme.size()] != ' ') {
        return std::nullopt;
    }
    std::string_view token = value.substr(kScheme.size());
    while (!token.empty() && token.front() == ' ') {
        token.remove_prefix(1);
    }
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
        token.remove_suffix(1);
    }
    if (token.empty() || token.find_first_of(" \t,") != std::string_view::npos) {
        return std::nullopt;
    }
    return token;
}

// A 401 with the challenge of RFC 6750: error="invalid_token" only when a
// key was sent.
Response MakeUnauthorized(std::string detail, bool key_sent, const Request& request) {
    Response response = MakeProblem(ErrorCode::kUnauthorized, std::move(detail), request);
    response.set(beast_http::field::www_authenticate,
                 key_sent ? R"(Bearer realm="conveyor", error="invalid_token")"
                          : R"(Bearer realm="conveyor")");
    return response;
}

// Returns the traceparent header when there is exactly one and it is valid.
// An invalid one is ignored rather than rejected, as W3C Trace Context
// requires.
std::string_view ValidTraceParentHeader(const Request& request) {
    if (request.count("traceparent") != 1) {
        return {};
    }
    const std::string_view header = request.find("traceparent")->value();
    return ParseTraceParent(header) ? header : std::string_view();
}

// Builds the response to a request target that ParseRequestTarget rejects: 400
// when only the query is at fault, 404 otherwise, because no route has such
// a target.
Response MakeTargetProblem(const Request& request) {
    const std::string_view raw_target = request.target();
    if (ParseRequestTarget(raw_target.substr(0, raw_target.find('?')))) {
        return MakeProblem(ErrorCode::kInvalidParameter,
                           "The query string is not valid: check its percent-encoding.", request);
    }
    return MakeProblem(ErrorCode::kNotFound,
                       "The request target must be a path that starts with a single /, such as "
                       "/v1/tasks.",
                       request);
}

bool IsProbeRoute(Route route) {
    return route == Route::kHealthz || route == Route::kReadyz || route == Route::kMetrics;
}

// Builds the 400 for a query parameter on an operations route that takes
// none, naming the first parameter in name order.
Response MakeNoQueryProblem(Route route, std::string_view name, const Request& request) {
    return MakeProblem(ErrorCode::kInvalidParameter,
                       "Unknown query parameter " + std::string(name) + "; " +
                           std::string(RouteName(route)) + " takes no query parameters.",
                       request);
}

// The method as logs and problem details quote it: a method is a token of
// any length, so a long one is cut.
std::string_view QuotedMethod(const Request& request) {
    constexpr std::size_t kMaxQuotedMethod = 32;
    return request.method_string().substr(0, kMaxQuotedMethod);
}

// Builds the 429 for a request whose response the tenant has no memory
// budget for.
Response MakeMemoryLimited(const Request& request) {
    Response response =
        MakeProblem(ErrorCode::kRateLimited,
                    "The request and response bodies of this tenant in the server are over "
                    "--max-body-bytes-per-tenant; read the responses already sent, then retry "
                    "after the Retry-After seconds.",
                    request);
    response.set(beast_http::field::retry_after, "1");
    return response;
}

// Counts a request in the request metrics and writes its log line.
void FinishRequest(const Request& request, std::string_view request_id, Route route,
                   std::string_view tenant, const TraceParent& trace, const Response& response,
                   std::chrono::steady_clock::time_point started) {
    const auto elapsed = std::chrono::steady_clock::now() - started;
    const double seconds = std::chrono::duration<double>(elapsed).count();
    const std::string_view method = QuotedMethod(request);
    const int status = static_cast<int>(response.result_int());
    ProcessRequestMetrics().Record(route, method, status, seconds);
    log::Info("http", "request",
              {{"request_id", request_id},
               {"method", method},
               {"route", RouteName(route)},
               {"status", status},
               {"latency_ms", seconds * 1000},
               {"tenant", tenant},
               log::Field::IfPresent("trace_id", trace.trace_id),
               log::Field::IfPresent("parent_span_id", trace.parent_id)});
}

// Builds the 429 for a long poll over a bound of `limit`. A GET without wait
// is not bounded.
Response MakeWaitLimited(WaitLimit::Outcome outcome, const WaitLimit& limit,
                         const Request& request) {
    std::string detail = outcome == WaitLimit::Outcome::kTenantAtBound
                             ? "The tenant already has " + std::to_string(limit.MaxPerTenant()) +
                                   " long polls waiting"
                             : "The server already holds " + std::to_string(limit.MaxTotal()) +
                                   " waiting long polls";
    detail += "; retry after the Retry-After seconds, or poll without wait.";
    Response response = MakeProblem(ErrorCode::kRateLimited, std::move(detail), request);
    response.set(beast_http::field::retry_after, kWaitLimitedRetryAfter);
    return response;
}

std::string RetryAfterSeconds(const Task& task, UnixMillis now) {
    if (task.status == TaskStatus::kPending && task.next_attempt_at &&
        *task.next_attempt_at > now) {
        return std::to_string((*task.next_attempt_at - now + 999) / 1000);
    }
    return "1";
}

}  // namespace

Response MakeProblemResponse(const Problem& problem, unsigned version, bool keep_alive) {
    Response response{static_cast<beast_http::status>(HttpStatusOf(problem.code)), version};
    response.set(beast_http::field::content_type, "application/problem+json");
    response.keep_alive(keep_alive);
    response.body() = ToJson(problem);
    response.prepare_payload();
    return response;
}

struct Api::Context {
    const Request& request;
    std::string_view request_id;
    RouteMatch match;
    std::map<std::string, std::string, std::less<>> query;
    std::string tenant;
    std::string_view traceparent;  // the valid traceparent header, or empty
    TraceParent trace;             // its fields, empty without one
    ConnectionHooks* connection;   // null when nothing watches the connection
};

Api::Api(TaskStore& store, CreateCommit& create_commit, asio::thread_pool& db_pool,
         TaskWatcher& watcher, std::string cursor_key, SubmissionLimits limits, ApiHooks hooks,
         ApiGuards guards)
    : store_(store),
      create_commit_(create_commit),
      db_pool_(db_pool),
      watcher_(watcher),
      cursor_key_(std::move(cursor_key)),
      limits_(limits),
      hooks_(std::move(hooks)),
      guards_(guards) {}

Admission Api::CheckHeader(const Request& request) {
    Admission admission{{}, std::string(kDefaultTenant), std::nullopt};
    const std::optional<boost::urls::url_view> target = ParseRequestTarget(request.target());
    // An operations route with a broken query keeps its route, so it gets
    // its 400 without a key.
    admission.match = MatchTargetRoute(request.target());

    // Every target but the operations routes is authenticated first, so no
    // spelling of a path (such as //v1/tasks or /v1/./tasks) reaches a /v1
    // handler, or learns whether a route exists, without a key.
    if (!IsOpenRoute(admission.match.route)) {
        admission.rejection = Guard(request, admission.tenant);
        if (admission.rejection) {
            return admission;
        }
    }
    if (!target) {
        admission.rejection = MakeTargetProblem(request);
        return admission;
    }

    // A detail quotes at most this much of a path, so a long path cannot
    // make a long problem body.
    constexpr std::size_t kMaxQuotedPath = 200;
    const std::string_view path = target->encoded_path().substr(0, kMaxQuotedPath);
    if (admission.match.route == Route::kNone) {
        admission.rejection = MakeProblem(ErrorCode::kNotFound,
                                          "No route matches " + std::string(path) + ".", request);
        return admission;
    }
    if (probes_only_ && !IsProbeRoute(admission.match.route)) {
        admission.rejection =
            MakeProblem(ErrorCode::kNotFound,
                        "No route matches " + std::string(path) +
                            "; this listener serves only /healthz, /readyz and /metrics.",
                        request);
        return admission;
    }
    const std::string_view method = request.method_string();
    if (!IsMethodAllowed(admission.match.route, method)) {
        const std::string_view allowed = AllowedMethods(admission.match.route);
        admission.rejection =
            MakeProblem(ErrorCode::kMethodNotAllowed,
                        "The method " + std::string(QuotedMethod(request)) +
                            " is not allowed here; use " + std::string(allowed) + ".",
                        request);
        admission.rejection->set(beast_http::field::allow, allowed);
    }
    return admission;
}

asio::awaitable<Response> Api::Handle(const Request& request, std::string_view request_id) {
    co_return co_await Handle(request, request_id, CheckHeader(request));
}

asio::awaitable<Response> Api::Handle(const Request& request, std::string_view request_id,
                                      Admission admission, ConnectionHooks* connection) {
    const auto started = std::chrono::steady_clock::now();
    Context context{
        request, request_id, std::move(admission.match), {}, std::move(admission.tenant), {},
        {},      connection};
    context.traceparent = ValidTraceParentHeader(request);
    if (!context.traceparent.empty()) {
        context.trace = *ParseTraceParent(context.traceparent);
    }
    std::optional<Response> response = std::move(admission.rejection);
    // A task with its text, or a page of tasks, can be megabytes of JSON:
    // it is not built while the tenant's budget is used up.
    const bool may_be_large =
        (context.match.route == Route::kTask || context.match.route == Route::kTasks) &&
        (request.method() == beast_http::verb::get || request.method() == beast_http::verb::head);
    if (!response && may_be_large && connection != nullptr &&
        connection->TenantNearBound(context.tenant)) {
        response = MakeMemoryLimited(request);
    }
    if (!response) {
        try {
            response = co_await Route(context);
        } catch (const std::exception& error) {
            log::Error("http", "request handler failed",
                       {{"request_id", request_id}, {"error", error.what()}});
        }
    }
    if (!response) {
        response =
            MakeProblem(ErrorCode::kInternalError, "The request failed unexpectedly.", request);
    }
    if (connection != nullptr && response->body().size() > kSmallResponseBytes &&
        !connection->ReserveResponse(context.tenant, response->body().size())) {
        response = MakeMemoryLimited(request);
    }
    FinishRequest(request, request_id, context.match.route, context.tenant, context.trace,
                  *response, started);
    co_return std::move(*response);
}

// Runs after CheckHeader admitted the request, so the target is valid and
// matches a route whose method is allowed.
asio::awaitable<Response> Api::Route(Context& context) {
    const Request& request = context.request;
    const std::optional<boost::urls::url_view> target = ParseRequestTarget(request.target());
    if (!target) {
        co_return MakeTargetProblem(request);
    }
    const std::string_view method = request.method_string();
    // Prometheus adds the query parameters of a scrape configuration
    // (`params`, or `__param_<name>` labels) to every scrape, and a name may
    // repeat, so /metrics ignores a well-formed query.
    if (context.match.route == Route::kMetrics) {
        co_return co_await Metrics(context);
    }
    for (const auto& param : target->params()) {
        if (param.key.empty()) {
            co_return MakeProblem(ErrorCode::kInvalidParameter,
                                  "The query string has a parameter without a name.", request);
        }
        if (context.query.contains(param.key)) {
            co_return MakeProblem(ErrorCode::kInvalidParameter,
                                  "The query parameter " + param.key + " is given more than once.",
                                  request);
        }
        context.query.emplace(param.key, param.value);
    }

    if (IsOpenRoute(context.match.route) && !context.query.empty()) {
        co_return MakeNoQueryProblem(context.match.route, context.query.begin()->first, request);
    }
    switch (context.match.route) {
        case Route::kHealthz:
            co_return MakeJsonResponse(beast_http::status::ok, R"({"status":"ok"})", request);
        case Route::kReadyz:
            co_return co_await Ready(context);
        case Route::kTasks:
            if (method == "POST") {
                co_return co_await Submit(context);
            }
            co_return co_await ListTasks(context);
        case Route::kTask:
            co_return co_await GetTask(context);
        case Route::kTaskCancel:
            co_return co_await CancelTask(context);
        case Route::kTaskRetry:
            co_return co_await RetryTask(context);
        case Route::kMetrics:
            co_return co_await Metrics(context);
        case Route::kOpenApi:
            co_return MakeJsonResponse(beast_http::status::ok, std::string(OpenApiDocument()),
                                       request);
        case Route::kNone:
            break;
    }
    co_return MakeProblem(ErrorCode::kNotFound, "No such route.", request);
}

std::optional<Response> Api::Guard(const Request& request, std::string& tenant) {
    if (guards_.api_keys != nullptr) {
        const auto header = request.find(beast_http::field::authorization);
        if (header == request.end()) {
            return MakeUnauthorized("Send an API key as Authorization: Bearer KEY.", false,
                                    request);
        }
        if (request.count(beast_http::field::authorization) > 1) {
            return MakeUnauthorized("Send one Authorization header.", true, request);
        }
        const std::optional<std::string_view> key = BearerToken(header->value());
        if (!key) {
            // No bearer token was sent, so the challenge carries no error
            // code (RFC 6750, section 3.1).
            return MakeUnauthorized("The Authorization header must read Bearer KEY.", false,
                                    request);
        }
        const std::optional<std::string_view> key_tenant = guards_.api_keys->Authenticate(*key);
        if (!key_tenant) {
            return MakeUnauthorized("The API key is not valid.", true, request);
        }
        tenant = std::string(*key_tenant);
    }
    if (guards_.rate_limiter != nullptr) {
        const Millis wait = guards_.rate_limiter->Admit(tenant, std::chrono::steady_clock::now());
        if (wait > Millis{0}) {
            Response response = MakeProblem(
                ErrorCode::kRateLimited,
                "Too many requests for this tenant; retry after the Retry-After seconds.", request);
            response.set(beast_http::field::retry_after, FormatRetryAfter(wait));
            return response;
        }
    }
    return std::nullopt;
}

asio::awaitable<Response> Api::Ready(Context& context) {
    const Status status = co_await RunBlocking(db_pool_, [this] { return store_.Ping(); });
    if (!status.ok()) {
        co_return MakeStorageProblem(status, context.request, context.request_id);
    }
    co_return MakeJsonResponse(beast_http::status::ok, R"({"status":"ready"})", context.request);
}

asio::awaitable<Response> Api::Metrics(Context& context) {
    const std::optional<TaskStats> stats = co_await stats_cache_.Get(store_, db_pool_);
    Response response{beast_http::status::ok, context.request.version()};
    response.set(beast_http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.keep_alive(context.request.keep_alive());
    response.body() = RenderMetrics(stats, NowMillis());
    response.prepare_payload();
    co_return response;
}

asio::awaitable<Response> Api::Submit(Context& context) {
    const Request& request = context.request;
    const auto content_type = request.find(beast_http::field::content_type);
    if (content_type == request.end() || !IsJsonMediaType(content_type->value())) {
        co_return MakeProblem(ErrorCode::kUnsupportedMediaType,
                              "Send the task as a JSON body with Content-Type: application/json.",
                              request);
    }
    // Every Content-Encoding field is checked, so a second field cannot hide
    // a compressed body behind a first one with the value identity.
    const auto encodings = request.equal_range(beast_http::field::content_encoding);
    for (auto encoding = encodings.first; encoding != encodings.second; ++encoding) {
        if (!boost::beast::iequals(encoding->value(), "identity")) {
            co_return MakeProblem(ErrorCode::kUnsupportedMediaType,
                                  "Content-Encoding " + std::string(encoding->value()) +
                                      " is not supported; send the body uncompressed.",
                                  request);
        }
    }
    std::optional<IdempotencyKey> key;
    if (request.count("Idempotency-Key") > 1) {
        co_return MakeProblem(ErrorCode::kInvalidIdempotencyKey,
                              "Send at most one Idempotency-Key header.", request);
    }
    if (const auto header = request.find("Idempotency-Key"); header != request.end()) {
        if (!IsValidIdempotencyKey(header->value())) {
            co_return MakeProblem(ErrorCode::kInvalidIdempotencyKey,
                                  "Idempotency-Key must be 1 to 255 visible ASCII characters.",
                                  request);
        }
        key = IdempotencyKey{std::string(header->value()), {}};
    }
    if (!context.query.empty()) {
        co_return MakeProblem(ErrorCode::kInvalidParameter,
                              "POST /v1/tasks takes no query parameters.", request);
    }

    auto parsed = ParseSubmission(request.body(), limits_, key.has_value());
    if (auto* problem = std::get_if<Problem>(&parsed)) {
        co_return MakeProblemResponse(*problem, request.version(), request.keep_alive());
    }
    auto& submission = std::get<Submission>(parsed);
    if (key) {
        key->request_hash = submission.request_hash;
    }

    if (std::optional<Response> rejected = co_await CheckPending(context)) {
        co_return std::move(*rejected);
    }

    NewTask task;
    task.tenant = context.tenant;
    task.type = std::move(submission.type);
    task.params_json = std::move(submission.params_json);
    task.metadata_json = std::move(submission.metadata_json);
    task.text = std::move(submission.text);
    task.max_attempts = submission.max_attempts;
    if (!context.traceparent.empty()) {
        task.traceparent = std::string(context.traceparent);
    }

    Result<CreateOutcome> created = Status::Internal("not attempted");
    const std::size_t lane = CreateLane(task.tenant, key);
    for (int attempt = 0; attempt < kIdCollisionRetries; ++attempt) {
        task.created_at = NowMillis();
        task.task_id = NewUuidV7(task.created_at);
        created = co_await AsyncGroupCommit(create_commit_, CreateRequest{&task, &key}, lane);
        if (created.ok() || created.status().code() != StatusCode::kConflict) {
            break;
        }
    }
    if (!created.ok()) {
        co_return MakeStorageProblem(created.status(), request, context.request_id);
    }
    if (created->disposition == CreateDisposition::kKeyReused) {
        co_return MakeProblem(ErrorCode::kIdempotencyKeyReused,
                              "This Idempotency-Key was already used with a different body.",
                              request);
    }
    if (created->disposition == CreateDisposition::kCreated) {
        metrics::Service().tasks_created.Add();
        log::Info("task", "task submitted",
                  {{"request_id", context.request_id},
                   {"task_id", created->task.task_id},
                   {"tenant", context.tenant},
                   {"to", "PENDING"},
                   {"attempt", 0},
                   log::Field::IfPresent("trace_id", context.trace.trace_id),
                   log::Field::IfPresent("parent_span_id", context.trace.parent_id)});
        if (hooks_.on_submitted) {
            hooks_.on_submitted();
        }
    }
    Response response =
        MakeJsonResponse(beast_http::status::accepted, TaskToJson(created->task, true), request);
    response.set(beast_http::field::location, "/v1/tasks/" + created->task.task_id);
    if (created->disposition == CreateDisposition::kReplayed) {
        response.set("Idempotent-Replayed", "true");
    }
    co_return response;
}

asio::awaitable<Response> Api::GetTask(Context& context) {
    const Request& request = context.request;
    if (!IsUuid(context.match.task_id)) {
        co_return MakeProblem(ErrorCode::kInvalidTaskId,
                              "The task id must be a UUID such as "
                              "0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b.",
                              request);
    }
    const std::string task_id = LowerCase(context.match.task_id);
    bool include_text = false;
    double wait_seconds = 0;
    for (const auto& [name, value] : context.query) {
        if (name == "include") {
            if (value != "text") {
                co_return MakeProblem(ErrorCode::kInvalidParameter,
                                      "include accepts only the value text.", request);
            }
            include_text = true;
        } else if (name == "wait") {
            const auto parsed =
                std::from_chars(value.data(), value.data() + value.size(), wait_seconds);
            if (parsed.ec != std::errc() || parsed.ptr != value.data() + value.size() ||
                !std::isfinite(wait_seconds) || wait_seconds < 0 ||
                wait_seconds > kMaxWaitSeconds) {
                co_return MakeProblem(ErrorCode::kInvalidParameter,
                                      "wait must be a number of seconds from 0 to 60.", request);
            }
        } else {
            co_return MakeProblem(ErrorCode::kInvalidParameter,
                                  "Unknown query parameter " + name + "; use include or wait.",
                                  request);
        }
    }

    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<std::int64_t>(wait_seconds * 1000));
    // The JSON is written on the database thread too. With its text, a task
    // can be megabytes of JSON, which would hold up the network thread. A
    // read that a long poll may follow with another read skips the JSON.
    auto load = [this, &context, &task_id, include_text](bool last_read) -> Result<RenderedTask> {
        Result<Task> found = store_.Get(context.tenant, task_id, include_text);
        if (!found.ok()) {
            return found.status();
        }
        RenderedTask rendered{std::move(*found), {}};
        if (last_read || IsTerminal(rendered.task.status)) {
            rendered.json = TaskToJson(rendered.task, true);
        }
        return rendered;
    };
    Result<RenderedTask> task =
        co_await RunBlocking(db_pool_, [&load, wait_seconds] { return load(wait_seconds <= 0); });
    if (task.ok() && !IsTerminal(task->task.status) && wait_seconds > 0) {
        WaitLimit::Slot slot;
        if (guards_.wait_limit != nullptr) {
            const WaitLimit::Outcome outcome = guards_.wait_limit->TryAdmit(context.tenant, slot);
            if (outcome != WaitLimit::Outcome::kAdmitted) {
                co_return MakeWaitLimited(outcome, *guards_.wait_limit, request);
            }
        }
        const asio::cancellation_slot gone = context.connection != nullptr
                                                 ? context.connection->StartWatching()
                                                 : asio::cancellation_slot();
        co_await watcher_.WaitForFinish(task_id, deadline, gone);
        task = co_await RunBlocking(db_pool_, [&load] { return load(true); });
    }
    if (!task.ok()) {
        if (task.status().code() == StatusCode::kNotFound) {
            co_return MakeProblem(ErrorCode::kTaskNotFound, "No task has the id " + task_id + ".",
                                  request);
        }
        co_return MakeStorageProblem(task.status(), request, context.request_id);
    }
    Response response = MakeJsonResponse(beast_http::status::ok, std::move(task->json), request);
    if (!IsTerminal(task->task.status)) {
        response.set(beast_http::field::retry_after, RetryAfterSeconds(task->task, NowMillis()));
    }
    co_return response;
}

asio::awaitable<Response> Api::ListTasks(Context& context) {
    const Request& request = context.request;
    ListQuery query;
    query.tenant = context.tenant;
    query.limit = kDefaultListLimit;
    std::optional<std::string> cursor;
    auto invalid = [&request](std::string detail) {
        return MakeProblem(ErrorCode::kInvalidParameter, std::move(detail), request);
    };

    for (const auto& [name, value] : context.query) {
        if (name == "status") {
            std::string_view rest = value;
            while (true) {
                const std::size_t comma = rest.find(',');
                const auto status = ParseTaskStatus(rest.substr(0, comma));
                if (!status) {
                    co_return invalid(
                        "status must be one or more of PENDING, PROCESSING, "
                        "COMPLETED, FAILED, CANCELLED, separated by commas.");
                }
                query.statuses.push_back(*status);
                if (comma == std::string_view::npos) {
                    break;
                }
                rest = rest.substr(comma + 1);
            }
        } else if (name == "type") {
            if (value.empty()) {
                co_return invalid("type must not be empty.");
            }
            query.type = value;
        } else if (name == "created_after" || name == "created_before") {
            const auto millis = ParseTimestamp(value);
            if (!millis) {
                co_return invalid(name +
                                  " must be an RFC 3339 timestamp such as "
                                  "2026-12-04T15:11:31.123Z.");
            }
            (name == "created_after" ? query.created_after : query.created_before) = *millis;
        } else if (name == "order") {
            if (value != "asc" && value != "desc") {
                co_return invalid("order must be asc or desc.");
            }
            query.descending = value == "desc";
        } else if (name == "limit") {
            const auto limit = ParseInteger(value);
            if (!limit || *limit < 1 || *limit > kMaxListLimit) {
                co_return invalid("limit must be an integer from 1 to 100.");
            }
            query.limit = *limit;
        } else if (name == "cursor") {
            cursor = value;
        } else {
            co_return invalid("Unknown query parameter " + name +
                              "; use status, type, created_after, created_before, order, "
                              "limit or cursor.");
        }
    }

    const std::string fingerprint = QueryFingerprint(query);
    if (cursor) {
        query.after = DecodeCursor(*cursor, fingerprint, cursor_key_);
        if (!query.after) {
            co_return MakeProblem(ErrorCode::kInvalidCursor,
                                  "The cursor is not one this server issued for this query; "
                                  "start again without it.",
                                  request);
        }
    }

    // The page is written on the database thread too, because a page of
    // tasks with large metadata is megabytes of JSON.
    auto body =
        co_await RunBlocking(db_pool_, [this, &query, &fingerprint]() -> Result<std::string> {
            auto page = store_.List(query);
            if (!page.ok()) {
                return page.status();
            }
            std::string json = "{\"items\":[";
            for (std::size_t i = 0; i < page->items.size(); ++i) {
                if (i > 0) {
                    json.push_back(',');
                }
                AppendTaskJson(json, page->items[i], false);
            }
            json += "],\"next_cursor\":";
            if (page->has_more && !page->items.empty()) {
                const Task& last = page->items.back();
                json.push_back('"');
                json += EncodeCursor({last.created_at, last.task_id}, fingerprint, cursor_key_);
                json.push_back('"');
            } else {
                json += "null";
            }
            json.push_back('}');
            return json;
        });
    if (!body.ok()) {
        co_return MakeStorageProblem(body.status(), request, context.request_id);
    }
    co_return MakeJsonResponse(beast_http::status::ok, std::move(*body), request);
}

asio::awaitable<Response> Api::CancelTask(Context& context) {
    const Request& request = context.request;
    if (!context.query.empty()) {
        co_return MakeProblem(ErrorCode::kInvalidParameter, "This route takes no query parameters.",
                              request);
    }
    if (!IsUuid(context.match.task_id)) {
        co_return MakeProblem(ErrorCode::kInvalidTaskId, "The task id must be a UUID.", request);
    }
    const std::string task_id = LowerCase(context.match.task_id);
    const UnixMillis now = NowMillis();
    auto task = co_await RunBlocking(db_pool_, [this, &context, &task_id, now] {
        return store_.Cancel(context.tenant, task_id, now);
    });
    if (!task.ok()) {
        switch (task.status().code()) {
            case StatusCode::kNotFound:
                co_return MakeProblem(ErrorCode::kTaskNotFound,
                                      "No task has the id " + task_id + ".", request);
            case StatusCode::kConflict:
                co_return MakeProblem(ErrorCode::kTaskNotCancellable,
                                      "The task has already finished and cannot be cancelled.",
                                      request);
            default:
                co_return MakeStorageProblem(task.status(), request, context.request_id);
        }
    }
    // A task that was already cancelled comes back unchanged, with an older
    // updated_at; only a real transition is logged and announced.
    if (task->updated_at == now) {
        log::Info("task", "task cancelled",
                  {{"request_id", context.request_id},
                   {"task_id", task_id},
                   {"tenant", context.tenant},
                   {"to", "CANCELLED"},
                   {"attempt", task->attempts}});
        if (hooks_.on_cancelled) {
            hooks_.on_cancelled(task_id);
        }
        watcher_.NotifyFinished(task_id);
    }
    co_return MakeJsonResponse(beast_http::status::ok, TaskToJson(*task, true), request);
}

asio::awaitable<std::optional<Response>> Api::CheckPending(Context& context) {
    if (guards_.pending_limit == nullptr) {
        co_return std::nullopt;
    }
    const Request& request = context.request;
    const Result<bool> admitted = co_await guards_.pending_limit->Admit(context.tenant);
    if (!admitted.ok()) {
        co_return MakeStorageProblem(admitted.status(), request, context.request_id);
    }
    if (*admitted) {
        co_return std::nullopt;
    }
    Response response =
        MakeProblem(ErrorCode::kRateLimited,
                    "The tenant has reached its bound of " + std::to_string(guards_.max_pending) +
                        " pending tasks; submit or retry again once some have started.",
                    request);
    response.set(beast_http::field::retry_after, kPendingRetryAfter);
    co_return response;
}

asio::awaitable<Response> Api::RetryTask(Context& context) {
    const Request& request = context.request;
    if (!context.query.empty()) {
        co_return MakeProblem(ErrorCode::kInvalidParameter, "This route takes no query parameters.",
                              request);
    }
    if (!IsUuid(context.match.task_id)) {
        co_return MakeProblem(ErrorCode::kInvalidTaskId, "The task id must be a UUID.", request);
    }
    const std::string task_id = LowerCase(context.match.task_id);
    // A retry puts the task back in PENDING, so it counts against the bound
    // like a submission.
    if (std::optional<Response> rejected = co_await CheckPending(context)) {
        co_return std::move(*rejected);
    }
    auto task = co_await RunBlocking(db_pool_, [this, &context, &task_id] {
        return store_.Redrive(context.tenant, task_id, NowMillis());
    });
    if (!task.ok()) {
        switch (task.status().code()) {
            case StatusCode::kNotFound:
                co_return MakeProblem(ErrorCode::kTaskNotFound,
                                      "No task has the id " + task_id + ".", request);
            case StatusCode::kConflict:
                co_return MakeProblem(ErrorCode::kTaskNotRetryable,
                                      "Only FAILED or CANCELLED tasks can be retried.", request);
            default:
                co_return MakeStorageProblem(task.status(), request, context.request_id);
        }
    }
    log::Info("task", "task sent back for retry",
              {{"request_id", context.request_id},
               {"task_id", task_id},
               {"tenant", context.tenant},
               {"to", "PENDING"},
               {"attempt", task->attempts}});
    if (hooks_.on_submitted) {
        hooks_.on_submitted();
    }
    Response response = MakeJsonResponse(beast_http::status::ok, TaskToJson(*task, true), request);
    response.set(beast_http::field::retry_after, "1");
    co_return response;
}

}  // namespace conveyor::http
