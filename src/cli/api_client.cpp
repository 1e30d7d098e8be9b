#include "cli/api_client.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/grammar/lut_chars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url.hpp>

namespace conveyor::cli {
namespace {

// Characters left as they are in query names and values: the unreserved
// ones, and ',' because the status filter is a comma-separated list. Every
// other character is percent-encoded, '+' included, because servers that
// decode form-style queries read a bare '+' as a space.
constexpr boost::urls::grammar::lut_chars kQueryChars = boost::urls::unreserved_chars + ',';

}  // namespace

std::string BuildTarget(std::string_view base_path, const std::vector<std::string>& segments,
                        const QueryParams& query) {
    boost::urls::url url;
    url.set_encoded_path(base_path);
    url.set_path_absolute(true);
    for (const std::string& segment : segments) {
        url.segments().push_back(segment);
    }
    std::string target(url.encoded_path());
    char separator = '?';
    for (const auto& [name, value] : query) {
        target += separator;
        target += boost::urls::encode(name, kQueryChars);
        target += '=';
        target += boost::urls::encode(value, kQueryChars);
        separator = '&';
    }
    return target;
}

ApiClient::ApiClient(ServerAddress server, std::string api_key, HttpClientOptions options)
    : server_(server), api_key_(std::move(api_key)), http_(std::move(server), options) {}

Result<HttpResponse> ApiClient::Send(const ApiRequest& request) {
    HttpRequest http_request;
    http_request.method = request.method;
    http_request.target = BuildTarget(server_.base_path, request.path_segments, request.query);
    http_request.headers = request.headers;
    if (!api_key_.empty()) {
        http_request.headers.emplace_back("Authorization", "Bearer " + api_key_);
    }
    http_request.json_body = request.json_body;
    http_request.timeout = request.timeout;
    return http_.Send(http_request);
}

}  // namespace conveyor::cli
