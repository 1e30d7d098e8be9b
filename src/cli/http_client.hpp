#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/server_address.hpp"
#include "core/status.hpp"

namespace conveyor::cli {

enum class HttpMethod { kGet, kPost };

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
    HttpMethod method = HttpMethod::kGet;
    std::string target;  // origin form: path and query, percent-encoded
    HttpHeaders headers;
    std::optional<std::string> json_body;  // sent with Content-Type: application/json
    // Bound on writing the request and reading the whole response.
    std::chrono::milliseconds timeout{30'000};
};

struct HttpResponse {
    int status = 0;
    std::string reason;
    std::string body;
    std::string retry_after;  // the Retry-After header, empty when absent
};

struct HttpClientOptions {
    std::chrono::milliseconds connect_timeout{10'000};
    // A larger response body fails like a broken connection.
    std::size_t max_body_bytes = 256 * 1024 * 1024;
};

// A blocking HTTP/1.1 client for one server over plain TCP. It keeps the
// connection open between requests while the server allows it, and opens a
// new one when needed. Not thread-safe: use one instance per thread.
class HttpClient {
  public:
    HttpClient(ServerAddress server, HttpClientOptions options);
    ~HttpClient();

    HttpClient(HttpClient&&) noexcept;
    HttpClient& operator=(HttpClient&&) noexcept;

    // Sends `request` and reads the response, whatever its status. Returns
    // Unavailable when the name lookup or connection fails or the connection
    // breaks, and DeadlineExceeded when a timeout expires. The message
    // describes the failure without naming the server. A GET that fails on a
    // reused connection before any byte of the response arrived is sent once
    // more on a new connection, because the server may have closed an idle
    // connection.
    Result<HttpResponse> Send(const HttpRequest& request);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace conveyor::cli
