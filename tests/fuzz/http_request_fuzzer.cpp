// Fuzzes HTTP request handling without a socket. The input bytes arrive on
// an in-memory stream, in pieces of a size set by the first byte. They go
// through the steps of a server connection (src/http/server.cpp): the raw
// header checks and Beast's parser with the server's limits, the framing
// checks, then the target parsing and routing of the API (src/http/api.cpp,
// src/http/router.cpp). Requests follow one another on the connection while
// each keeps it alive.

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "http/problem.hpp"
#include "http/request_framing.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;

using conveyor::fuzz::Require;
using conveyor::http::Route;
using Request = beast_http::request<beast_http::string_body>;

constexpr int kMaxRequestsPerInput = 8;
// Small enough that the fuzzer reaches the body limit.
constexpr std::uint64_t kMaxBodyBytes = 4096;

void CheckProblemJson(conveyor::http::ErrorCode code, std::string detail) {
    const std::string json = conveyor::http::ToJson({code, std::move(detail), {}});
    boost::json::error_code error;
    boost::json::parse(json, error);
    Require(!error, "a problem body is valid JSON");
}

// Checks that the router's results for `path` agree with each other.
void CheckRoute(std::string_view path) {
    const conveyor::http::RouteMatch match = conveyor::http::MatchRoute(path);
    const std::string_view allow = conveyor::http::AllowedMethods(match.route);
    const std::string_view name = conveyor::http::RouteName(match.route);
    if (match.route == Route::kNone) {
        Require(allow.empty(), "an unmatched path allows no method");
        Require(name == "unmatched", "an unmatched path is logged as unmatched");
        Require(match.task_id.empty(), "an unmatched path has no task id");
        return;
    }
    Require(!allow.empty(), "a route allows some method");
    Require(name.starts_with('/'), "a route name is a path");
    for (const std::string_view method : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"}) {
        const bool listed = allow.find(method) != std::string_view::npos;
        Require(conveyor::http::IsMethodAllowed(match.route, method) == listed,
                "IsMethodAllowed agrees with the Allow header");
    }
    Require(conveyor::http::IsMethodAllowed(match.route, "HEAD") ==
                conveyor::http::IsMethodAllowed(match.route, "GET"),
            "HEAD is allowed exactly where GET is");

    std::string rebuilt;
    switch (match.route) {
        case Route::kTask:
            rebuilt = "/v1/tasks/" + match.task_id;
            break;
        case Route::kTaskCancel:
            rebuilt = "/v1/tasks/" + match.task_id + "/cancel";
            break;
        case Route::kTaskRetry:
            rebuilt = "/v1/tasks/" + match.task_id + "/retry";
            break;
        default:
            Require(match.task_id.empty(), "a route without {id} has no task id");
            return;
    }
    Require(!match.task_id.empty(), "a task route has a task id");
    Require(match.task_id.find('/') == std::string::npos, "a task id has no slash");
    Require(rebuilt == path, "the path is the route with its task id");
}

// Parses the request target and its query as Api::CheckHeader and
// Api::Route do, and checks the routing of its path.
void RouteRequest(const Request& request) {
    const auto target = conveyor::http::ParseRequestTarget(request.target());
    if (!target) {
        return;
    }
    Require(!request.target().starts_with("//"), "a target starting with // is never routed");
    const std::string_view path = target->encoded_path();
    Require(!path.starts_with("//"), "a routed path starts with a single /");
    CheckRoute(path);
    const auto match = conveyor::http::MatchRoute(path);
    if (conveyor::http::IsOpenRoute(match.route)) {
        Require(!path.starts_with("/v1"), "no /v1 path is open without a key");
    }
    if (match.route == Route::kNone) {
        CheckProblemJson(conveyor::http::ErrorCode::kNotFound,
                         "No route matches " + std::string(path) + ".");
        return;
    }
    const std::string_view method = request.method_string();
    if (!conveyor::http::IsMethodAllowed(match.route, method)) {
        CheckProblemJson(conveyor::http::ErrorCode::kMethodNotAllowed,
                         "The method " + std::string(method) + " is not allowed here.");
        return;
    }
    std::set<std::string, std::less<>> names;
    for (const auto& param : target->params()) {
        if (param.key.empty() || !names.insert(param.key).second) {
            return;
        }
        CheckProblemJson(conveyor::http::ErrorCode::kInvalidParameter,
                         "Unknown query parameter " + param.key + ".");
    }
}

// Reads one request as the server does and returns whether the connection
// would stay open for another.
bool ServeOneRequest(beast::test::stream& stream, beast::flat_buffer& buffer) {
    const conveyor::http::ServerLimits limits;
    conveyor::http::RequestParser parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(kMaxBodyBytes);

    beast::error_code error;
    std::size_t scanned = 0;
    for (;;) {
        const std::string_view buffered(static_cast<const char*>(buffer.data().data()),
                                        buffer.size());
        std::size_t used = 0;
        const auto parse = conveyor::http::ParseBufferedHeader(buffered, limits.max_header_bytes,
                                                               scanned, parser, used, error);
        if (parse == conveyor::http::HeaderParse::kDone) {
            Require(used <= limits.max_header_bytes, "an accepted header is within the limit");
            Require(used <= buffered.size(), "a header is no longer than the bytes read");
            buffer.consume(used);
            break;
        }
        if (parse != conveyor::http::HeaderParse::kNeedMore) {
            CheckProblemJson(conveyor::http::HeaderProblem(parse, error).code, "header");
            return false;  // the server responds and closes the connection
        }
        const std::size_t read = stream.read_some(buffer.prepare(16 * 1024), error);
        if (error) {
            return false;
        }
        buffer.commit(read);
    }
    const conveyor::http::FramingFault fault = conveyor::http::FindFramingFault(parser.get());
    if (fault != conveyor::http::FramingFault::kNone) {
        CheckProblemJson(conveyor::http::FramingProblem(fault).code, "framing");
        return false;
    }
    const unsigned version = parser.get().version();
    Require(version == 10 || version == 11, "only HTTP/1.0 and HTTP/1.1 are served");
    const auto request_id = parser.get().find("X-Request-Id");
    if (request_id != parser.get().end()) {
        (void)conveyor::http::IsSaneRequestId(request_id->value());
    }
    if (!parser.is_done()) {
        beast_http::read(stream, buffer, parser, error);
        if (error) {
            return false;
        }
    }
    const Request& request = parser.get();
    Require(request.body().size() <= kMaxBodyBytes, "a read body is within the limit");
    RouteRequest(request);
    return request.keep_alive();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    // Pieces of 1 to 64 bytes, or whole reads, exercise the parser's
    // incremental paths as a slow or a fast client would.
    const std::size_t piece = data[0] >= 0xC0 ? 65536 : 1 + data[0] % 64;
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

    asio::io_context context;
    beast::test::stream server(context);
    beast::test::stream client(context);
    server.connect(client);
    server.read_size(piece);
    if (!bytes.empty()) {
        asio::write(client, asio::buffer(bytes.data(), bytes.size()));
    }
    client.close();

    beast::flat_buffer buffer;
    for (int i = 0; i < kMaxRequestsPerInput; ++i) {
        if (!ServeOneRequest(server, buffer)) {
            break;
        }
    }
    return 0;
}
