#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string_view>

namespace conveyor::http {

// Returns true when `id` may be echoed as X-Request-Id: 1 to 128 visible
// ASCII characters.
bool IsSaneRequestId(std::string_view id);

// Returns true when Transfer-Encoding is present but does not end in
// "chunked": the body's length is then unknown, and reading on would take
// its bytes for the next request (RFC 9112, section 6.3).
bool HasUnframedBody(const boost::beast::http::request_header<boost::beast::http::fields>& request);

}  // namespace conveyor::http
