#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <string_view>

#include "http/problem.hpp"

namespace conveyor::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
using RequestHeader = boost::beast::http::request_header<boost::beast::http::fields>;

// Returns true when `id` may be echoed as X-Request-Id: 1 to 128 visible
// ASCII characters.
bool IsSaneRequestId(std::string_view id);

// Returns true when Transfer-Encoding is present and is not "chunked"
// alone. A coding list that does not end in chunked leaves the body's length
// unknown (RFC 9112, section 6.3). One that does, such as "gzip, chunked" or
// "chunked, chunked", names codings this server does not decode, and a
// proxy in front of it may frame such a body differently, so it is
// rejected too.
bool HasUnframedBody(const RequestHeader& request);

// The outcome of ParseBufferedHeader.
enum class HeaderParse {
    kNeedMore,            // the empty line that ends the header has not arrived yet
    kDone,                // the parser contains the header
    kTooLarge,            // no empty line within the header size limit
    kObsFold,             // a field line continued on the next line (obs-fold)
    kUnsupportedVersion,  // a well-formed version other than HTTP/1.0 and 1.1
    kInvalid,             // the parser rejected the header
};

// Parses a request header from the start of `bytes` once the empty line that
// ends it has arrived, so the raw lines are checked before Beast 1.81 parses
// them. Beast unfolds obs-fold silently, and it rejects every version but
// HTTP/1.0 and HTTP/1.1 as malformed, where a well-formed one gets 505. `scanned` carries how far
// earlier calls searched for the empty line, so a header that arrives in
// many pieces is searched once; start it at 0 for each request. On kDone,
// `used` is the header's length, which the caller consumes from its buffer.
// On kInvalid, `error` is the parser's error.
HeaderParse ParseBufferedHeader(std::string_view bytes, std::size_t max_header_bytes,
                                std::size_t& scanned, RequestParser& parser, std::size_t& used,
                                boost::beast::error_code& error);

// Framing faults of a parsed header. The server rejects each at once and
// closes the connection, because where the body ends is not certain.
enum class FramingFault {
    kNone,
    kTransferEncodingInHttp10,  // HTTP/1.0 has no transfer codings
    kUnframedBody,              // see HasUnframedBody
    kContentLengthAndEncoding,  // both Content-Length and Transfer-Encoding
    kDuplicateContentType,      // Content-Type more than once
};

// Returns the first framing fault of a parsed request header, or kNone.
// Allocates nothing.
FramingFault FindFramingFault(const RequestHeader& request);

// Returns the problem sent for a framing fault other than kNone, or for a
// header that ParseBufferedHeader did not accept.
Problem FramingProblem(FramingFault fault);
Problem HeaderProblem(HeaderParse parse, const boost::beast::error_code& error);

}  // namespace conveyor::http
