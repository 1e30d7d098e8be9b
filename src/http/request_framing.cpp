#include "http/request_framing.hpp"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

namespace conveyor::http {

bool IsSaneRequestId(std::string_view id) {
    return !id.empty() && id.size() <= 128 &&
           std::all_of(id.begin(), id.end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
}

bool HasUnframedBody(
    const boost::beast::http::request_header<boost::beast::http::fields>& request) {
    const auto encoding = request.find(boost::beast::http::field::transfer_encoding);
    if (encoding == request.end()) {
        return false;
    }
    std::string_view value = encoding->value();
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
    }
    const std::size_t comma = value.rfind(',');
    std::string_view last = comma == std::string_view::npos ? value : value.substr(comma + 1);
    while (!last.empty() && (last.front() == ' ' || last.front() == '\t')) {
        last.remove_prefix(1);
    }
    return !boost::beast::iequals(last, "chunked");
}

}  // namespace conveyor::http
