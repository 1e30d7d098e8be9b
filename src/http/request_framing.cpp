#include "http/request_framing.hpp"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>

namespace conveyor::http {

namespace beast_http = boost::beast::http;

namespace {

// Returns true when a line of `lines` after the first starts with white
// space: obs-fold (RFC 9112, section 5.2), or white space between the
// request line and the first field line (section 2.2). Both are rejected.
bool HasContinuationLine(std::string_view lines) {
    for (std::size_t at = lines.find("\r\n"); at != std::string_view::npos && at + 2 < lines.size();
         at = lines.find("\r\n", at + 2)) {
        const char next = lines[at + 2];
        if (next == ' ' || next == '\t') {
            return true;
        }
    }
    return false;
}

bool IsDigit(char c) {
    return c >= '0' && c <= '9';
}

// Returns true when the request line ends in a well-formed HTTP version,
// "HTTP/" DIGIT "." DIGIT (RFC 9112, section 2.3), other than 1.0 and 1.1.
bool HasUnsupportedVersion(std::string_view header) {
    const std::string_view line = header.substr(0, header.find("\r\n"));
    constexpr std::size_t kVersionSize = 8;
    if (line.size() <= kVersionSize || line[line.size() - kVersionSize - 1] != ' ') {
        return false;
    }
    const std::string_view version = line.substr(line.size() - kVersionSize);
    if (!version.starts_with("HTTP/") || !IsDigit(version[5]) || version[6] != '.' ||
        !IsDigit(version[7])) {
        return false;
    }
    return version != "HTTP/1.0" && version != "HTTP/1.1";
}

}  // namespace

bool IsSaneRequestId(std::string_view id) {
    return !id.empty() && id.size() <= 128 &&
           std::all_of(id.begin(), id.end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
}

bool HasUnframedBody(const RequestHeader& request) {
    const auto encoding = request.find(beast_http::field::transfer_encoding);
    if (encoding == request.end()) {
        return false;
    }
    std::string_view value = encoding->value();
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
    }
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
    }
    return !boost::beast::iequals(value, "chunked");
}

HeaderParse ParseBufferedHeader(std::string_view bytes, std::size_t max_header_bytes,
                                std::size_t& scanned, RequestParser& parser, std::size_t& used,
                                boost::beast::error_code& error) {
    constexpr std::string_view kEmptyLine = "\r\n\r\n";
    // Three bytes back, so that an empty line split across reads is found.
    const std::size_t from = scanned > 3 ? scanned - 3 : 0;
    const std::size_t end = bytes.find(kEmptyLine, from);
    // A line that ends in LF alone would never end the header, so the
    // request would wait for its timeout. It is rejected at once instead.
    const std::size_t header_end = end == std::string_view::npos ? bytes.size() : end;
    for (std::size_t i = std::max<std::size_t>(scanned, 1); i < header_end; ++i) {
        if (bytes[i] == '\n' && bytes[i - 1] != '\r') {
            error = beast_http::error::bad_line_ending;
            return HeaderParse::kInvalid;
        }
    }
    if (!bytes.empty() && bytes.front() == '\n') {
        error = beast_http::error::bad_line_ending;
        return HeaderParse::kInvalid;
    }
    if (end == std::string_view::npos) {
        scanned = bytes.size();
        return bytes.size() > max_header_bytes ? HeaderParse::kTooLarge : HeaderParse::kNeedMore;
    }
    const std::size_t length = end + kEmptyLine.size();
    if (length > max_header_bytes) {
        return HeaderParse::kTooLarge;
    }
    if (HasUnsupportedVersion(bytes)) {
        return HeaderParse::kUnsupportedVersion;
    }
    if (HasContinuationLine(bytes.substr(0, end + 2))) {
        return HeaderParse::kObsFold;
    }
    used = parser.put(boost::asio::buffer(bytes.data(), length), error);
    if (!error && !parser.is_header_done()) {
        error = beast_http::error::partial_message;
    }
    return error ? HeaderParse::kInvalid : HeaderParse::kDone;
}

FramingFault FindFramingFault(const RequestHeader& request) {
    const bool has_encoding = request.find(beast_http::field::transfer_encoding) != request.end();
    if (has_encoding && request.version() < 11) {
        return FramingFault::kTransferEncodingInHttp10;
    }
    if (HasUnframedBody(request)) {
        return FramingFault::kUnframedBody;
    }
    if (has_encoding && request.find(beast_http::field::content_length) != request.end()) {
        return FramingFault::kContentLengthAndEncoding;
    }
    if (request.count(beast_http::field::content_type) > 1) {
        return FramingFault::kDuplicateContentType;
    }
    return FramingFault::kNone;
}

Problem FramingProblem(FramingFault fault) {
    switch (fault) {
        case FramingFault::kTransferEncodingInHttp10:
            return {ErrorCode::kMalformedRequest,
                    "An HTTP/1.0 request cannot use Transfer-Encoding; send Content-Length.",
                    {}};
        case FramingFault::kUnframedBody:
            return {ErrorCode::kMalformedRequest,
                    "Transfer-Encoding must be chunked alone; no other coding is supported.",
                    {}};
        case FramingFault::kContentLengthAndEncoding:
            return {ErrorCode::kMalformedRequest,
                    "Send Content-Length or Transfer-Encoding, not both.",
                    {}};
        case FramingFault::kDuplicateContentType:
            return {ErrorCode::kMalformedRequest, "Send one Content-Type header.", {}};
        case FramingFault::kNone:
            break;
    }
    return {ErrorCode::kInternalError, "The request failed unexpectedly.", {}};
}

Problem HeaderProblem(HeaderParse parse, const boost::beast::error_code& error) {
    if (parse == HeaderParse::kTooLarge || error == beast_http::error::header_limit) {
        return {ErrorCode::kMalformedRequest, "The request headers are over the size limit.", {}};
    }
    if (parse == HeaderParse::kUnsupportedVersion) {
        return {
            ErrorCode::kHttpVersionNotSupported, "Only HTTP/1.1 and HTTP/1.0 are supported.", {}};
    }
    if (parse == HeaderParse::kObsFold) {
        return {ErrorCode::kMalformedRequest,
                "A header line starts with white space (obs-fold); send each field on one line.",
                {}};
    }
    if (error == beast_http::error::multiple_content_length) {
        return {ErrorCode::kMalformedRequest,
                "Content-Length is sent more than once with different values.",
                {}};
    }
    if (error == beast_http::error::body_limit) {
        return {ErrorCode::kPayloadTooLarge, "The request body is over the size limit.", {}};
    }
    if (error == beast_http::error::bad_line_ending) {
        return {ErrorCode::kMalformedRequest,
                "A header line ends in LF alone; end each line with CR LF.",
                {}};
    }
    return {ErrorCode::kMalformedRequest, "The request is not valid HTTP/1.1.", {}};
}

}  // namespace conveyor::http
