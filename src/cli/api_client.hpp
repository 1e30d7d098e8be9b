#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/http_client.hpp"
#include "cli/server_address.hpp"
#include "core/status.hpp"

namespace conveyor::cli {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// One call to the Conveyor HTTP API. Path segments and query values are
// given as plain text, and BuildTarget percent-encodes them.
struct ApiRequest {
    HttpMethod method = HttpMethod::kGet;
    std::vector<std::string> path_segments;  // below the base path, e.g. {"v1", "tasks"}
    QueryParams query;
    HttpHeaders headers;
    std::optional<std::string> json_body;
    std::chrono::milliseconds timeout{30'000};
};

// Builds an origin-form request target: the base path (already encoded),
// then each segment and the query, percent-encoded. A segment such as "a/b"
// stays one segment ("a%2Fb").
std::string BuildTarget(std::string_view base_path, const std::vector<std::string>& segments,
                        const QueryParams& query);

// An HttpClient bound to one Conveyor server, adding the API key to every
// request as "Authorization: Bearer KEY" when one is set.
class ApiClient {
  public:
    ApiClient(ServerAddress server, std::string api_key, HttpClientOptions options = {});

    // Sends `request` and returns what HttpClient::Send returns.
    Result<HttpResponse> Send(const ApiRequest& request);

    const ServerAddress& server() const { return server_; }

  private:
    ServerAddress server_;
    std::string api_key_;
    HttpClient http_;
};

}  // namespace conveyor::cli
