#pragma once

#include <string>
#include <string_view>

#include "core/status.hpp"

namespace conveyor::cli {

// The parsed value of --server: where the client connects and the path that
// prefixes every API route.
struct ServerAddress {
    std::string host;       // a name or an IP address, IPv6 without brackets
    std::string port;       // decimal, 1 to 65535
    std::string base_path;  // percent-encoded, empty or "/prefix" without a trailing slash

    // Returns "host:port" in the form an HTTP Host header takes.
    std::string HostHeader() const;
    // Returns the address as a URL, for messages.
    std::string ToUrl() const;
};

// Parses an http:// URL with an optional port (default 80) and base path.
// Returns InvalidArgument with a message fit for the user when the URL is
// malformed, uses another scheme (https included: this client speaks plain
// HTTP only), has no host, or carries user information, a query or a fragment.
Result<ServerAddress> ParseServerAddress(std::string_view url);

}  // namespace conveyor::cli
