#include "cli/server_address.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>
#include <string>

namespace conveyor::cli {
namespace {

namespace urls = boost::urls;

bool IsValidPort(std::string_view port) {
    int number = 0;
    const char* end = port.data() + port.size();
    auto [last, error] = std::from_chars(port.data(), end, number);
    return error == std::errc() && last == end && number >= 1 && number <= 65535;
}

Status Invalid(std::string_view url, std::string_view reason) {
    return Status::InvalidArgument("invalid --server URL '" + std::string(url) +
                                   "': " + std::string(reason));
}

}  // namespace

std::string ServerAddress::HostHeader() const {
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + port;
    }
    return host + ":" + port;
}

std::string ServerAddress::ToUrl() const {
    return "http://" + HostHeader() + base_path;
}

Result<ServerAddress> ParseServerAddress(std::string_view url) {
    auto parsed = urls::parse_uri(url);
    if (!parsed) {
        return Invalid(url, "expected a URL such as http://127.0.0.1:8080");
    }
    const urls::url_view& view = *parsed;

    if (view.scheme_id() == urls::scheme::https) {
        return Invalid(url, "https is not supported; this client speaks plain http only");
    }
    if (view.scheme_id() != urls::scheme::http) {
        return Invalid(url, "the scheme must be http");
    }
    if (!view.has_authority() || view.encoded_host().empty()) {
        return Invalid(url, "the host is missing");
    }
    if (view.has_userinfo()) {
        return Invalid(url, "user information is not allowed; pass the key with --api-key");
    }
    if (view.has_query() || view.has_fragment()) {
        return Invalid(url, "a query or fragment is not allowed");
    }

    ServerAddress address;
    address.host = view.host_address();
    if (view.has_port()) {
        if (!IsValidPort(view.port())) {
            return Invalid(url, "the port must be a number from 1 to 65535");
        }
        address.port = view.port();
    } else {
        address.port = "80";
    }

    address.base_path = view.encoded_path();
    while (!address.base_path.empty() && address.base_path.back() == '/') {
        address.base_path.pop_back();
    }
    return address;
}

}  // namespace conveyor::cli
