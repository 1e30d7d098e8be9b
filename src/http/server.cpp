#include "http/server.hpp"

#include <array>
#include <atomic>
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
#include <chrono>
#include <limits>
#include <list>
#include <mutex>
#include <optional>

#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/api.hpp"
#include "http/body_budget.hpp"
#include "http/metrics_page.hpp"
#include "http/request_framing.hpp"
#include "http/router.hpp"

namespace conveyor::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
using tcp = asio::ip::tcp;

// The kind of input or output a connection waits for. At the cap, the
// connection to close is picked by this order first: the one that costs its
// client least goes first, and an upload in progress goes last.
enum class Wait : int {
    kNextRequest = 0,  // nothing of a request yet, or input discarded before a close
    kHeader = 1,       // the rest of a request's header
    kReader = 2,       // the client to read a response
    kBody = 3,         // the rest of a request's body
    kNothing = 4,      // the Api handles a request, long polls included: never closed
};

// The state of one open connection that the accept loop reads when it
// picks one to close at the cap.
struct Connection {
    explicit Connection(beast::tcp_stream& connection_stream)
        : strand(connection_stream.get_executor()), stream(&connection_stream) {}

    const asio::any_io_executor strand;
    // Null once the session ends. Read and written only on `strand`.
    beast::tcp_stream* stream;
    std::atomic<Wait> waiting{Wait::kNextRequest};
    // When the current wait began, in steady-clock ticks.
    std::atomic<std::chrono::steady_clock::rep> waiting_since{0};
    bool evicted = false;  // guarded by State::connections_mutex
};

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
    // Cancelled when, at the cap, a connection closes or starts to wait for
    // its client; the accept loop waits on it.
    asio::steady_timer connection_closed;
    std::atomic<std::size_t> open_connections{0};
    std::optional<std::chrono::steady_clock::time_point> cap_logged_at;  // on accept_strand
    std::mutex connections_mutex;
    std::list<std::shared_ptr<Connection>> connections;  // guarded by connections_mutex
    Api& api;
    ServerLimits limits;
    std::string bound_host;
    std::uint16_t bound_port = 0;
    std::atomic<int> requests_in_flight{0};
    std::atomic<bool> stopping{false};
};

namespace {

// Counts and registers one open connection, and wakes the accept loop when
// it closes at the cap. Lives in the connection's coroutine, on its strand.
class ConnectionSlot {
  public:
    ConnectionSlot(std::shared_ptr<HttpServer::State> state, beast::tcp_stream& stream)
        : state_(std::move(state)), connection_(std::make_shared<Connection>(stream)) {
        connection_->waiting_since.store(
            std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        metrics::Service().http_connections_open.Add(1);
        const std::lock_guard lock(state_->connections_mutex);
        position_ = state_->connections.insert(state_->connections.end(), connection_);
    }
    ~ConnectionSlot() {
        connection_->stream = nullptr;
        {
            const std::lock_guard lock(state_->connections_mutex);
            state_->connections.erase(position_);
        }
        metrics::Service().http_connections_open.Add(-1);
        if (state_->open_connections.fetch_sub(1) >= state_->limits.max_connections) {
            asio::post(state_->accept_strand,
                       [state = state_] { state->connection_closed.cancel(); });
        }
    }
    ConnectionSlot(const ConnectionSlot&) = delete;
    ConnectionSlot& operator=(const ConnectionSlot&) = delete;

    // The connection waits for the client from now on, and may be closed to
    // make room at the cap.
    void MarkWaiting(Wait wait) {
        connection_->waiting_since.store(
            std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        const Wait before = connection_->waiting.exchange(wait, std::memory_order_relaxed);
        if (before == Wait::kNothing && state_->open_connections.load(std::memory_order_relaxed) >=
                                            state_->limits.max_connections) {
            // The accept loop may be asleep because every connection was
            // busy; this one can now make room.
            asio::post(state_->accept_strand,
                       [state = state_] { state->connection_closed.cancel(); });
        }
    }

    // The Api handles a request on the connection, which is not closed to
    // make room until the response is ready.
    void MarkBusy() { connection_->waiting.store(Wait::kNothing, std::memory_order_relaxed); }

  private:
    std::shared_ptr<HttpServer::State> state_;
    std::shared_ptr<Connection> connection_;
    std::list<std::shared_ptr<Connection>>::iterator position_;
};

// Counts and logs a request that could not be read, so never reached the
// Api, under the route "unmatched".
void LogUnreadRequest(const RequestParser& parser, std::string_view request_id,
                      std::string_view error, const Response& response) {
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
               {"error", error}});
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

// Logs that the connection cap was reached, once a minute at most. Runs on
// the accept strand.
void LogCapReached(HttpServer::State& state) {
    constexpr auto kLogInterval = std::chrono::minutes(1);
    const auto now = std::chrono::steady_clock::now();
    if (!state.cap_logged_at || now - *state.cap_logged_at >= kLogInterval) {
        state.cap_logged_at = now;
        log::Warn("http",
                  "connection limit reached; closing connections that wait for a request, or "
                  "accepting again when one closes",
                  {{"max_connections", state.limits.max_connections}});
    }
}

// Returns the connection to close first to make room, or null when every
// connection is busy. Of the connections that wait for their client and are
// not already being closed, it picks the first kind in the order of Wait,
// then the one that has waited longest. Call with connections_mutex held.
std::shared_ptr<Connection> FirstToEvictLocked(const HttpServer::State& state) {
    std::shared_ptr<Connection> first;
    auto first_wait = Wait::kNothing;
    auto first_since = std::numeric_limits<std::chrono::steady_clock::rep>::max();
    for (const std::shared_ptr<Connection>& connection : state.connections) {
        const Wait wait = connection->waiting.load(std::memory_order_relaxed);
        if (connection->evicted || wait == Wait::kNothing || wait > first_wait) {
            continue;
        }
        const auto since = connection->waiting_since.load(std::memory_order_relaxed);
        if (wait < first_wait || since < first_since) {
            first_wait = wait;
            first_since = since;
            first = connection;
        }
    }
    return first;
}

// Closes the connection that FirstToEvictLocked picks, unless the Api has
// started on a request there by the time its strand runs the close. Returns
// false when every connection is busy.
bool EvictOne(const std::shared_ptr<HttpServer::State>& state) {
    std::shared_ptr<Connection> victim;
    {
        const std::lock_guard lock(state->connections_mutex);
        victim = FirstToEvictLocked(*state);
        if (!victim) {
            return false;
        }
        victim->evicted = true;
    }
    asio::post(victim->strand, [state, victim] {
        if (victim->stream != nullptr &&
            victim->waiting.load(std::memory_order_relaxed) != Wait::kNothing) {
            metrics::Service().http_connections_evicted.Add(1);
            victim->stream->close();
            return;
        }
        const std::lock_guard lock(state->connections_mutex);
        victim->evicted = false;
    });
    return true;
}

// Waits until a connection closes or starts to wait for its client. Runs on
// the accept strand.
asio::awaitable<void> WaitForFreeSlot(HttpServer::State& state) {
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

std::string_view HttpServer::BoundHost() const {
    return state_->bound_host;
}

std::uint16_t HttpServer::BoundPort() const {
    return state_->bound_port;
}

void HttpServer::Start() {
    auto state = state_;
    asio::co_spawn(
        state->acceptor.get_executor(),
        [state]() -> asio::awaitable<void> {
            for (;;) {
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
                // At the cap, the new connection takes the place of the one
                // that has waited longest for its client. While every
                // connection works on a request, it waits here unread, and
                // the ones after it wait in the listen backlog.
                while (state->open_connections >= state->limits.max_connections) {
                    LogCapReached(*state);
                    if (EvictOne(state)) {
                        break;
                    }
                    co_await WaitForFreeSlot(*state);
                    if (state->stopping) {
                        co_return;
                    }
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

// Bytes asked of the socket per read while a header arrives.
constexpr std::size_t kHeaderReadBytes = 16 * 1024;

// After a response that leaves part of a request unread, the connection
// reads and discards what the client still sends before it closes, for at
// most this long and this many bytes. Closing a socket with unread input
// sends a reset, which can destroy the response before the client reads it.
constexpr auto kDiscardTime = std::chrono::seconds(2);
constexpr std::size_t kDiscardBytes = 16 * 1024 * 1024;
constexpr std::size_t kDiscardReadBytes = 8 * 1024;

// The largest body read for any request but a submission. No other route
// takes a body, and the operations routes need no key, so a larger one
// would let anyone make the server hold it.
constexpr std::uint64_t kSmallBodyBytes = 4 * 1024;

bool TakesLargeBody(const Admission& admission, const RequestParser& parser) {
    return admission.match.route == Route::kTasks &&
           parser.get().method() == beast_http::verb::post;
}

// Reserves the tenant's budget for the body of a submission: its declared
// length, or the largest body when it is chunked. When the tenant is at its
// bound, sets a 429 as the admission's rejection.
void ReserveBody(const HttpServer::State& state, Admission& admission, const RequestParser& parser,
                 BodyBudget::Reservation& reservation) {
    BodyBudget* budget = state.limits.body_budget;
    if (budget == nullptr) {
        return;
    }
    const std::uint64_t bytes = parser.content_length().value_or(state.limits.max_body_bytes);
    if (budget->TryReserve(admission.tenant, bytes, reservation)) {
        return;
    }
    Problem problem{ErrorCode::kRateLimited,
                    "The request bodies this tenant is sending at once are over " +
                        std::to_string(budget->MaxPerTenant()) +
                        " bytes; retry after the Retry-After seconds.",
                    {}};
    admission.rejection =
        MakeProblemResponse(problem, parser.get().version(), parser.get().keep_alive());
    admission.rejection->set(beast_http::field::retry_after, "1");
}

// The next step of a connection after a response.
enum class AfterResponse { kReadNext, kClose, kDiscardAndClose };

// The outcome of reading a request header.
struct HeaderRead {
    bool disconnected = false;       // closed or timed out: send no response
    std::optional<Problem> problem;  // rejected: send this and close
};

std::string_view Buffered(const beast::flat_buffer& buffer) {
    return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

// Returns true for errors after which no response can or need be sent.
bool IsDisconnect(const beast::error_code& error) {
    return error == beast::error::timeout || error == asio::error::eof ||
           error == asio::error::connection_reset;
}

// Reads a request header into `parser` and checks its framing. The idle
// timeout applies until the first byte and the request timeout after it, so
// a client that sends its header a byte at a time is cut off.
asio::awaitable<HeaderRead> ReadHeader(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                       RequestParser& parser, const ServerLimits& limits,
                                       ConnectionSlot& slot) {
    if (buffer.size() == 0) {
        stream.expires_after(limits.idle_timeout);
        const auto first = co_await stream.async_read_some(buffer.prepare(kHeaderReadBytes),
                                                           asio::as_tuple(asio::use_awaitable));
        if (std::get<0>(first)) {
            co_return HeaderRead{true, std::nullopt};
        }
        buffer.commit(std::get<1>(first));
    }
    slot.MarkWaiting(Wait::kHeader);
    stream.expires_after(limits.request_timeout);
    std::size_t scanned = 0;
    // Each pass reads at least one byte, and kTooLarge ends the loop once
    // max_header_bytes are buffered without the end of the header.
    for (;;) {
        std::size_t used = 0;
        beast::error_code error;
        const HeaderParse parse = ParseBufferedHeader(Buffered(buffer), limits.max_header_bytes,
                                                      scanned, parser, used, error);
        if (parse == HeaderParse::kDone) {
            buffer.consume(used);
            const FramingFault fault = FindFramingFault(parser.get());
            if (fault != FramingFault::kNone) {
                co_return HeaderRead{false, FramingProblem(fault)};
            }
            co_return HeaderRead{};
        }
        if (parse != HeaderParse::kNeedMore) {
            co_return HeaderRead{false, HeaderProblem(parse, error)};
        }
        const auto piece = co_await stream.async_read_some(buffer.prepare(kHeaderReadBytes),
                                                           asio::as_tuple(asio::use_awaitable));
        if (std::get<0>(piece)) {
            co_return HeaderRead{true, std::nullopt};
        }
        buffer.commit(std::get<1>(piece));
    }
}

// Reads the body of an admitted request. The deadline set at the request's
// first byte still runs, so a body sent a byte at a time is cut off like a
// slow header.
asio::awaitable<beast::error_code> ReadBody(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                            RequestParser& parser) {
    // Clients such as curl wait for this before they send a large body. It
    // goes out only after the header was admitted, so a request without a
    // valid key never receives it.
    const auto expect = parser.get().find(beast_http::field::expect);
    if (expect != parser.get().end() && beast::iequals(expect->value(), "100-continue")) {
        beast_http::response<beast_http::empty_body> go_on{beast_http::status::continue_, 11};
        const auto written =
            co_await beast_http::async_write(stream, go_on, asio::as_tuple(asio::use_awaitable));
        if (std::get<0>(written)) {
            co_return std::get<0>(written);
        }
    }
    const auto body_read = co_await beast_http::async_read(stream, buffer, parser,
                                                           asio::as_tuple(asio::use_awaitable));
    co_return std::get<0>(body_read);
}

// The connection, as a request's handler uses it. StartWatching reads from
// the connection while the request is handled, to learn that the client
// has gone: a long poll then stops waiting instead of holding its slot
// until the wait ends. Data that arrives meanwhile, the start of a
// pipelined request, stays in the buffer, and watching stops there.
// ReserveResponse takes the response's bytes from the tenant's body budget
// into `response_bytes`, which the caller holds until the response is
// written.
class ServerConnectionHooks final : public ConnectionHooks {
  public:
    ServerConnectionHooks(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                          const ServerLimits& limits, BodyBudget::Reservation& response_bytes)
        : stream_(stream),
          buffer_(buffer),
          budget_(limits.body_budget),
          largest_body_(limits.max_body_bytes),
          response_bytes_(response_bytes) {}
    ServerConnectionHooks(const ServerConnectionHooks&) = delete;
    ServerConnectionHooks& operator=(const ServerConnectionHooks&) = delete;

    bool ReserveResponse(std::string_view tenant, std::uint64_t bytes) override {
        return budget_ == nullptr || budget_->TryReserve(tenant, bytes, response_bytes_);
    }

    bool TenantNearBound(std::string_view tenant) override {
        return budget_ != nullptr && budget_->NearBound(tenant, largest_body_);
    }

    asio::cancellation_slot StartWatching() override {
        if (!read_ended_) {
            read_ended_.emplace(stream_.get_executor(),
                                std::chrono::steady_clock::time_point::max());
            reading_ = true;
            asio::co_spawn(stream_.get_executor(), Read(), asio::detached);
        }
        return gone_.slot();
    }

    // Ends the read, if one is under way, and completes once it has ended.
    // Call before the connection is used again.
    asio::awaitable<void> Stop() {
        if (!reading_) {
            co_return;
        }
        stopping_ = true;
        beast::error_code ignored;
        stream_.socket().cancel(ignored);
        co_await read_ended_->async_wait(asio::as_tuple(asio::use_awaitable));
    }

  private:
    asio::awaitable<void> Read() {
        const auto [error, bytes] = co_await stream_.async_read_some(
            buffer_.prepare(kHeaderReadBytes), asio::as_tuple(asio::use_awaitable));
        buffer_.commit(bytes);
        reading_ = false;
        if (error && !stopping_) {
            gone_.emit(asio::cancellation_type::terminal);
        }
        read_ended_->cancel();
    }

    beast::tcp_stream& stream_;
    beast::flat_buffer& buffer_;
    BodyBudget* budget_;
    // A task's JSON is at most about as large as the largest submission.
    std::uint64_t largest_body_;
    BodyBudget::Reservation& response_bytes_;
    asio::cancellation_signal gone_;
    // Created when watching starts; cancelled when the read ends.
    std::optional<asio::steady_timer> read_ended_;
    bool reading_ = false;
    bool stopping_ = false;
};

// The reservations of the tenant's body budget for one request. The
// request's body is freed, and its bytes are returned, when Api::Handle
// returns. The response's bytes are held until the response is written.
struct RequestBudget {
    BodyBudget::Reservation request_bytes;
    BodyBudget::Reservation response_bytes;
};

// Checks the header with the Api, reads the body when the request is
// admitted, and returns the response, or nullopt when the client left.
// Sets `after`.
asio::awaitable<std::optional<Response>> AnswerRequest(
    HttpServer::State& state, beast::tcp_stream& stream, beast::flat_buffer& buffer,
    RequestParser& parser, std::string_view request_id, ConnectionSlot& slot, RequestBudget& budget,
    AfterResponse& after) {
    Admission admission = state.api.CheckHeader(parser.get());
    if (!admission.rejection && !parser.is_done() && TakesLargeBody(admission, parser)) {
        ReserveBody(state, admission, parser, budget.request_bytes);
    }
    if (!admission.rejection && !parser.is_done()) {
        beast::error_code error;
        // A chunked body is checked against the limit as it arrives; a
        // declared length is checked here, before any of it is read.
        const std::uint64_t limit =
            TakesLargeBody(admission, parser) ? state.limits.max_body_bytes : kSmallBodyBytes;
        parser.body_limit(limit);
        const auto length = parser.content_length();
        if (length && *length > limit) {
            error = beast_http::error::body_limit;
        }
        if (!error) {
            slot.MarkWaiting(Wait::kBody);
            error = co_await ReadBody(stream, buffer, parser);
        }
        if (error) {
            if (IsDisconnect(error)) {
                co_return std::nullopt;
            }
            after = AfterResponse::kDiscardAndClose;
            Response response =
                MakeProblemResponse(HeaderProblem(HeaderParse::kInvalid, error), 11, false);
            LogUnreadRequest(parser, request_id, error.message(), response);
            co_return response;
        }
    }
    // A rejection leaves the body unread: it cannot be skipped without
    // reading it, so the connection closes after the response.
    const bool body_unread = !parser.is_done();
    const Request& request = parser.get();
    stream.expires_never();
    ServerConnectionHooks hooks(stream, buffer, state.limits, budget.response_bytes);
    slot.MarkBusy();
    Response response =
        co_await state.api.Handle(request, request_id, std::move(admission), &hooks);
    co_await hooks.Stop();
    // Sending the response does not need the request body. Freeing it now
    // means that a client which has read its response has its budget back.
    std::string().swap(parser.get().body());
    budget.request_bytes = BodyBudget::Reservation();
    if (body_unread) {
        after = AfterResponse::kDiscardAndClose;
    } else {
        after = request.keep_alive() && !state.stopping ? AfterResponse::kReadNext
                                                        : AfterResponse::kClose;
    }
    if (request.method() == beast_http::verb::head) {
        // The headers, Content-Length included, are those of GET.
        const auto length = response.body().size();
        response.body().clear();
        response.content_length(length);
    }
    co_return response;
}

// Reads one request, sends its response, and returns what the connection
// does next.
asio::awaitable<AfterResponse> ServeOneRequest(HttpServer::State& state, beast::tcp_stream& stream,
                                               beast::flat_buffer& buffer, ConnectionSlot& slot) {
    const ServerLimits& limits = state.limits;
    RequestBudget budget;
    RequestParser parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    // The body's limit depends on the route, so it is set once the header
    // has been admitted: a request without a key gets its 401 whatever
    // length it declares.
    parser.body_limit(boost::none);

    HeaderRead header = co_await ReadHeader(stream, buffer, parser, limits, slot);
    if (header.disconnected) {
        co_return AfterResponse::kClose;
    }
    InFlight in_flight(state.requests_in_flight);

    std::string request_id;
    if (!header.problem) {
        const auto found = parser.get().find("X-Request-Id");
        if (found != parser.get().end() && IsSaneRequestId(found->value())) {
            request_id = std::string(found->value());
        }
    }
    if (request_id.empty()) {
        request_id = RandomHex(16);
    }

    AfterResponse after = AfterResponse::kDiscardAndClose;
    std::optional<Response> response;
    if (header.problem) {
        response = MakeProblemResponse(*header.problem, 11, false);
        LogUnreadRequest(parser, request_id, header.problem->detail, *response);
    } else {
        response =
            co_await AnswerRequest(state, stream, buffer, parser, request_id, slot, budget, after);
        if (!response) {
            co_return AfterResponse::kClose;
        }
    }
    response->set("X-Request-Id", request_id);
    response->keep_alive(after == AfterResponse::kReadNext);
    slot.MarkWaiting(Wait::kReader);

    stream.expires_after(limits.request_timeout);
    const auto written =
        co_await beast_http::async_write(stream, *response, asio::as_tuple(asio::use_awaitable));
    co_return std::get<0>(written) ? AfterResponse::kClose : after;
}

// Reads and discards what the client still sends, until it closes or
// kDiscardTime or kDiscardBytes is reached.
asio::awaitable<void> DiscardInput(beast::tcp_stream& stream) {
    stream.expires_after(kDiscardTime);
    std::array<char, kDiscardReadBytes> sink{};
    std::size_t discarded = 0;
    while (discarded < kDiscardBytes) {
        const auto piece = co_await stream.async_read_some(asio::buffer(sink),
                                                           asio::as_tuple(asio::use_awaitable));
        if (std::get<0>(piece)) {
            break;
        }
        discarded += std::get<1>(piece);
    }
}

asio::awaitable<void> RunSession(std::shared_ptr<HttpServer::State> state, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    ConnectionSlot slot(state, stream);
    beast::flat_buffer buffer;
    AfterResponse after = co_await ServeOneRequest(*state, stream, buffer, slot);
    while (after == AfterResponse::kReadNext) {
        slot.MarkWaiting(Wait::kNextRequest);
        after = co_await ServeOneRequest(*state, stream, buffer, slot);
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (after == AfterResponse::kDiscardAndClose) {
        slot.MarkWaiting(Wait::kNextRequest);
        co_await DiscardInput(stream);
    }
}

}  // namespace
}  // namespace conveyor::http
