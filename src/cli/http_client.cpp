#include "cli/http_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <string_view>

namespace conveyor::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view kUserAgent = "conveyor-cli";

std::string FormatDuration(std::chrono::milliseconds duration) {
    if (duration.count() % 1000 == 0) {
        return std::to_string(duration.count() / 1000) + " s";
    }
    return std::to_string(duration.count()) + " ms";
}

// Converts a failed step into the Status that Send returns.
Status TransportError(std::string_view step, const beast::error_code& error,
                      std::chrono::milliseconds timeout) {
    if (error == beast::error::timeout) {
        return Status::DeadlineExceeded(std::string(step) + " timed out after " +
                                        FormatDuration(timeout));
    }
    return Status::Unavailable(std::string(step) + " failed: " + error.message());
}

// Errors that a request on a reused connection gets when the server closed
// that connection while it was idle.
bool IsClosedConnectionError(const beast::error_code& error) {
    return error == http::error::end_of_stream || error == asio::error::eof ||
           error == asio::error::connection_reset || error == asio::error::broken_pipe;
}

http::verb ToVerb(HttpMethod method) {
    switch (method) {
        case HttpMethod::kGet:
            return http::verb::get;
        case HttpMethod::kPost:
            return http::verb::post;
    }
    return http::verb::get;
}

}  // namespace

struct HttpClient::Impl {
    Impl(ServerAddress server_address, HttpClientOptions client_options)
        : server(std::move(server_address)), options(client_options), stream(io_context) {}

    Status Connect();
    // Sends one request on the open connection, or on a new one. Sets
    // *closed_by_server when a reused connection turned out to be closed
    // before any byte of the response arrived.
    Result<HttpResponse> SendOnce(const HttpRequest& request, bool* closed_by_server);
    void Close();

    // beast::tcp_stream applies its timeouts to asynchronous operations only,
    // so each step starts one and runs the io_context until it completes.
    void RunPending() {
        io_context.restart();
        io_context.run();
    }

    ServerAddress server;
    HttpClientOptions options;
    asio::io_context io_context;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    bool connected = false;
};

Status HttpClient::Impl::Connect() {
    // NOTE: the name lookup is synchronous and bounded only by the system
    // resolver's own timeouts, not by connect_timeout.
    tcp::resolver resolver(io_context);
    beast::error_code error;
    tcp::resolver::results_type endpoints = resolver.resolve(server.host, server.port, error);
    if (error) {
        return Status::Unavailable("name lookup of " + server.host + " failed: " + error.message());
    }

    stream.expires_after(options.connect_timeout);
    stream.async_connect(
        endpoints, [&error](beast::error_code result, const tcp::endpoint&) { error = result; });
    RunPending();
    if (error) {
        Close();
        return TransportError("connection", error, options.connect_timeout);
    }
    connected = true;
    return Status::Ok();
}

Result<HttpResponse> HttpClient::Impl::SendOnce(const HttpRequest& request,
                                                bool* closed_by_server) {
    *closed_by_server = false;
    const bool reused = connected;
    if (!connected) {
        Status status = Connect();
        if (!status.ok()) {
            return status;
        }
    }

    http::request<http::string_body> message{ToVerb(request.method), request.target, 11};
    message.set(http::field::host, server.HostHeader());
    message.set(http::field::user_agent, kUserAgent);
    message.set(http::field::accept, "application/json");
    for (const auto& [name, value] : request.headers) {
        message.set(name, value);
    }
    if (request.json_body) {
        message.set(http::field::content_type, "application/json");
        message.body() = *request.json_body;
    }
    message.prepare_payload();

    beast::error_code error;
    stream.expires_after(request.timeout);
    http::async_write(stream, message,
                      [&error](beast::error_code result, std::size_t) { error = result; });
    RunPending();
    if (error) {
        Close();
        *closed_by_server = reused && IsClosedConnectionError(error);
        return TransportError("sending the request", error, request.timeout);
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    http::async_read(stream, buffer, parser,
                     [&error](beast::error_code result, std::size_t) { error = result; });
    RunPending();
    if (error) {
        Close();
        *closed_by_server = reused && !parser.got_some() && IsClosedConnectionError(error);
        return TransportError("reading the response", error, request.timeout);
    }
    stream.expires_never();

    http::response<http::string_body> response = parser.release();
    if (!response.keep_alive()) {
        Close();
    }
    HttpResponse result;
    result.status = static_cast<int>(response.result_int());
    result.reason = std::string(response.reason());
    result.body = std::move(response.body());
    result.retry_after = std::string(response[http::field::retry_after]);
    return result;
}

void HttpClient::Impl::Close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.consume(buffer.size());
    connected = false;
}

HttpClient::HttpClient(ServerAddress server, HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(server), options)) {}

HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
    bool closed_by_server = false;
    Result<HttpResponse> response = impl_->SendOnce(request, &closed_by_server);
    if (!response.ok() && closed_by_server && request.method == HttpMethod::kGet) {
        response = impl_->SendOnce(request, &closed_by_server);
    }
    return response;
}

}  // namespace conveyor::cli
