#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/duration.hpp"
#include "core/status.hpp"

namespace conveyor::http {

class Api;
class BodyBudget;

struct ServerLimits {
    std::size_t max_header_bytes = 16 * 1024;
    std::uint64_t max_body_bytes = 8 * 1024 * 1024;
    Millis idle_timeout{60'000};  // a kept-alive connection with no request
    // Reading one request, headers and body, from its first byte; and
    // writing one response. Handling the request (a long poll) is not timed.
    Millis request_timeout{30'000};
    // Open connections. At the cap, a new connection replaces one that waits
    // for its client (see Wait in server.cpp). New ones wait while every
    // connection has a request in progress.
    std::size_t max_connections = 10'000;
    // Bytes of submission bodies each tenant may have in the server at once;
    // null is no bound. Outlives the server.
    BodyBudget* body_budget = nullptr;
};

// Accepts HTTP/1.1 connections and hands each request to the Api. One
// coroutine per connection, on its own strand, with keep-alive.
class HttpServer {
  public:
    HttpServer(boost::asio::any_io_executor executor, Api& api, ServerLimits limits);
    ~HttpServer();

    // Binds and listens on "HOST:PORT" (port 0 picks a free one). Returns the
    // bound "HOST:PORT".
    Result<std::string> Listen(std::string_view address);

    std::string_view BoundHost() const;
    std::uint16_t BoundPort() const;

    // Starts accepting. Call after Listen.
    void Start();

    // Stops accepting new connections; requests already being read or
    // handled go on. Thread-safe.
    void StopAccepting();

    // Completes when no request is being handled, or when `timeout` passes.
    boost::asio::awaitable<void> WaitForIdle(Millis timeout);

    // Shared with the accept loop and the connections, which may outlive a
    // call; defined in server.cpp.
    struct State;

  private:
    std::shared_ptr<State> state_;
};

}  // namespace conveyor::http
