#include "http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <chrono>
#include <optional>

#include "core/ids.hpp"
#include "core/log.hpp"
#include "http/api.hpp"
#include "http/metrics_page.hpp"
#include "http/request_framing.hpp"
#include "http/router.hpp"

namespace conveyor::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::State {
    State(asio::any_io_executor executor, Api& api_ref, ServerLimits server_limits)
        : io_executor(executor),
          accept_strand(asio::make_strand(executor)),
          acceptor(accept_strand),
          connection_closed(accept_strand),
          api(api_ref),
          limits(server_limits) {}

    asio::any_io_executor io_executor;
    // The accept loop, the acceptor and connection_closed live on this
    // strand, so a close at the cap cannot slip between the loop's check of
    // open_connections and its wait.
    asio::strand<asio::any_io_executor> accept_strand;
    tcp::acceptor acceptor;
    // Cancelled when a connection closes while open_connections is at the
    // cap; the accept loop waits on it.
    asio::steady_timer connection_closed;
    std::atomic<std::size_t> open_connections{0};
    std::optional<std::chrono::steady_clock::time_point> cap_logged_at;  // on accept_strand
    Api& api;
    ServerLimits limits;
    std::string bound_host;
    std::uint16_t bound_port = 0;
    std::atomic<int> requests_in_flight{0};
    std::atomic<bool> stopping{false};
};

namespace {

// Builds the problem response for a request that never reaches the Api
// because it could not be read.
Response MakeReadErrorResponse(const beast::error_code& error) {
    if (error == beast_http::error::body_limit) {
        return MakeProblemResponse(
            Problem{ErrorCode::kPayloadTooLarge, "The request body is over the size limit.", {}},
            11, false);
    }
    if (error == beast_http::error::header_limit) {
        return MakeProblemResponse(
            Problem{ErrorCode::kInvalidParameter, "The request headers are over the size limit.",
                    {}},
            11, false);
    }
    return MakeProblemResponse(
        Problem{ErrorCode::kInvalidParameter, "The request is not valid HTTP/1.1.", {}}, 11,
        false);
}

// Counts one open connection, and wakes the accept loop when it closes at
// the cap.
class ConnectionSlot {
  public:
    explicit ConnectionSlot(std::shared_ptr<HttpServer::State> state) : state_(std::move(state)) {}
    ~ConnectionSlot() {
        if (state_->open_connections.fetch_sub(1) >= state_->limits.max_connections) {
            asio::post(state_->accept_strand,
                       [state = state_] { state->connection_closed.cancel(); });
        }
    }
    ConnectionSlot(const ConnectionSlot&) = delete;
    ConnectionSlot& operator=(const ConnectionSlot&) = delete;

  private:
    std::shared_ptr<HttpServer::State> state_;
};

// Counts and logs a request that could not be read, so never reached the
// Api, under the route "unmatched".
void LogUnreadRequest(const beast_http::request_parser<beast_http::string_body>& parser,
                      std::string_view request_id, const beast::error_code& error,
                      const Response& response) {
    std::string_view method;
    if (parser.is_header_done()) {
        method = parser.get().method_string();
    }
    const int status = static_cast<int>(response.result_int());
    ProcessRequestMetrics().Record(Route::kNone, method, status, 0);
    log::Info("http", "request",
              {{"request_id", request_id},
               {"method", method},
               {"route", RouteName(Route::kNone)},
               {"status", status},
               {"error", error.message()}});
}

struct InFlight {
    explicit InFlight(std::atomic<int>& counter) : counter_(counter) { ++counter_; }
    ~InFlight() { --counter_; }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

private:
    std::atomic<int>& counter_;
};

asio::awaitable<void> RunSession(std::shared_ptr<HttpServer::State> state, tcp::socket socket);

// Waits until a connection closes, logging at most once a minute that the
// cap was reached. Runs on the accept strand.
asio::awaitable<void> WaitForFreeSlot(HttpServer::State& state) {
    constexpr auto kLogInterval = std::chrono::minutes(1);
    const auto now = std::chrono::steady_clock::now();
    if (!state.cap_logged_at || now - *state.cap_logged_at >= kLogInterval) {
        state.cap_logged_at = now;
        log::Warn("http", "connection limit reached; accepting again when a connection closes",
                  {{"max_connections", state.limits.max_connections}});
    }
    state.connection_closed.expires_at(std::chrono::steady_clock::time_point::max());
    co_await state.connection_closed.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace

HttpServer::HttpServer(asio::any_io_executor executor, Api& api, ServerLimits limits)
    : state_(std::make_shared<State>(std::move(executor), api, limits)) {}

HttpServer::~HttpServer() = default;

Result<std::string> HttpServer::Listen(std::string_view address) {
    const std::size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) {
        return Status::InvalidArgument("--listen must be HOST:PORT, got " + std::string(address));
    }
    std::string host(address.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    const std::string port_text(address.substr(colon + 1));
    int port = -1;
    try {
        std::size_t used = 0;
        port = std::stoi(port_text, &used);
        if (used != port_text.size()) {
            port = -1;
        }
    } catch (const std::exception&) {
        port = -1;
    }
    if (port < 0 || port > 65535) {
        return Status::InvalidArgument("--listen has an invalid port: " + port_text);
    }
    boost::system::error_code error;
    const auto ip = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, error);
    if (error) {
        return Status::InvalidArgument("--listen has an invalid IP address: " + host);
    }
    const tcp::endpoint endpoint(ip, static_cast<std::uint16_t>(port));
    auto& acceptor = state_->acceptor;
    acceptor.open(endpoint.protocol(), error);
    if (!error) {
        acceptor.set_option(asio::socket_base::reuse_address(true), error);
    }
    if (!error) {
        acceptor.bind(endpoint, error);
    }
    if (!error) {
        acceptor.listen(asio::socket_base::max_listen_connections, error);
    }
    if (error) {
        return Status::Unavailable("cannot listen on " + std::string(address) + ": " +
                                   error.message());
    }
    const tcp::endpoint bound = acceptor.local_endpoint();
    state_->bound_host = bound.address().to_string();
    state_->bound_port = bound.port();
    return state_->bound_host + ":" + std::to_string(state_->bound_port);
}

std::string_view HttpServer::BoundHost() const { return state_->bound_host; }

std::uint16_t HttpServer::BoundPort() const { return state_->bound_port; }

void HttpServer::Start() {
    auto state = state_;
    asio::co_spawn(
        state->acceptor.get_executor(),
        [state]() -> asio::awaitable<void> {
            for (;;) {
                if (state->open_connections >= state->limits.max_connections) {
                    co_await WaitForFreeSlot(*state);
                    if (state->stopping) {
                        co_return;
                    }
                    continue;
                }
                auto accepted = co_await state->acceptor.async_accept(
                    asio::make_strand(state->io_executor), asio::as_tuple(asio::use_awaitable));
                const auto error = std::get<0>(accepted);
                auto socket = std::move(std::get<1>(accepted));
                if (state->stopping) {
                    co_return;
                }
                if (error) {
                    if (error == asio::error::operation_aborted) {
                        co_return;
                    }
                    // Running out of descriptors must not end the accept loop.
                    log::Warn("http", "accept failed", {{"error", error.message()}});
                    asio::steady_timer pause(state->acceptor.get_executor(),
                                             std::chrono::milliseconds(50));
                    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                    continue;
                }
                ++state->open_connections;
                auto executor = socket.get_executor();
                asio::co_spawn(executor, RunSession(state, std::move(socket)), asio::detached);
            }
        },
        asio::detached);
}

void HttpServer::StopAccepting() {
    auto state = state_;
    asio::post(state->accept_strand, [state] {
        state->stopping = true;
        boost::system::error_code ignored;
        state->acceptor.close(ignored);
        state->connection_closed.cancel();
    });
}

asio::awaitable<void> HttpServer::WaitForIdle(Millis timeout) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (state_->requests_in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

namespace {

// Bytes read from a connection before the parser reads them: the start of a
// request, which may contain all of it.
constexpr std::size_t kFirstReadBytes = 16 * 1024;

// Reads one request, sends its response, and returns whether the connection
// stays open for another.
asio::awaitable<bool> ServeOneRequest(HttpServer::State& state, beast::tcp_stream& stream,
                                      beast::flat_buffer& buffer) {
    const ServerLimits& limits = state.limits;
    beast_http::request_parser<beast_http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);

    // The header is read piece by piece so that its size can be counted
    // here: Beast 1.81's own header limit misses empty header lines such as
    // "X:", which would otherwise let one request grow memory without bound.
    // The idle timeout applies until the first byte, the request timeout
    // after it. Beast's read_some returns only once the whole header has
    // arrived, so the first bytes are read here, without the parser. A
    // client that sends its header a byte at a time then meets the request
    // timeout rather than the idle one.
    if (buffer.size() == 0) {
        stream.expires_after(limits.idle_timeout);
        const auto first = co_await stream.async_read_some(buffer.prepare(kFirstReadBytes),
                                                           asio::as_tuple(asio::use_awaitable));
        if (std::get<0>(first)) {
            co_return false;
        }
        buffer.commit(std::get<1>(first));
    }
    stream.expires_after(limits.request_timeout);
    beast::error_code header_error;
    std::size_t header_bytes = 0;
    while (!parser.is_header_done()) {
        const auto piece = co_await beast_http::async_read_some(
            stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        header_error = std::get<0>(piece);
        if (header_error) {
            break;
        }
        header_bytes += std::get<1>(piece);
        if (header_bytes > limits.max_header_bytes) {
            header_error = beast_http::error::header_limit;
            break;
        }
    }
    if (header_bytes == 0 &&
        (header_error == beast_http::error::end_of_stream ||
         header_error == beast::error::timeout || header_error == asio::error::eof ||
         header_error == asio::error::connection_reset ||
         header_error == asio::error::operation_aborted)) {
        co_return false;
    }
    if (!header_error && HasUnframedBody(parser.get())) {
        header_error = beast_http::error::bad_transfer_encoding;
    }
    InFlight in_flight(state.requests_in_flight);

    std::string request_id;
    if (!header_error) {
        const auto found = parser.get().find("X-Request-Id");
        if (found != parser.get().end() && IsSaneRequestId(found->value())) {
            request_id = std::string(found->value());
        }
    }
    if (request_id.empty()) {
        request_id = RandomHex(16);
    }

    beast::error_code body_error;
    if (!header_error && !parser.is_done()) {
        // Clients such as curl wait for this before they send a large body.
        const auto expect = parser.get().find(beast_http::field::expect);
        if (expect != parser.get().end() && beast::iequals(expect->value(), "100-continue") &&
            parser.content_length().value_or(0) <= limits.max_body_bytes) {
            beast_http::response<beast_http::empty_body> go_on{beast_http::status::continue_, 11};
            co_await beast_http::async_write(stream, go_on, asio::as_tuple(asio::use_awaitable));
        }
        // The deadline set at the request's first byte still runs, so a
        // body sent a byte at a time is cut off like slow headers.
        const auto body_read = co_await beast_http::async_read(
            stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        body_error = std::get<0>(body_read);
    }

    Response response;
    bool keep_alive = false;
    const beast::error_code read_error = header_error ? header_error : body_error;
    if (read_error) {
        if (read_error == beast::error::timeout || read_error == asio::error::eof ||
            read_error == asio::error::connection_reset) {
            co_return false;
        }
        response = MakeReadErrorResponse(read_error);
        LogUnreadRequest(parser, request_id, read_error, response);
    } else {
        const Request& request = parser.get();
        stream.expires_never();
        response = co_await state.api.Handle(request, request_id);
        keep_alive = request.keep_alive() && !state.stopping;
        if (request.version() < 11 && request.count(beast_http::field::transfer_encoding) > 0) {
            keep_alive = false;  // HTTP/1.0 has no transfer codings (RFC 9112, section 6.1)
        }
        if (request.method() == beast_http::verb::head) {
            // The headers, Content-Length included, are those of GET.
            const auto length = response.body().size();
            response.body().clear();
            response.content_length(length);
        }
    }
    response.set("X-Request-Id", request_id);
    response.keep_alive(keep_alive);

    stream.expires_after(limits.request_timeout);
    const auto written =
        co_await beast_http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
    co_return !std::get<0>(written) && keep_alive;
}

asio::awaitable<void> RunSession(std::shared_ptr<HttpServer::State> state, tcp::socket socket) {
    const ConnectionSlot slot(state);
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    bool keep_going = true;
    while (keep_going) {
        keep_going = co_await ServeOneRequest(*state, stream, buffer);
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace
}  // namespace conveyor::http
