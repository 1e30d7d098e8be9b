#include "http/request_framing.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/error.hpp>
#include <string>
#include <string_view>
#include <utility>

namespace conveyor::http {
namespace {

constexpr std::size_t kMaxHeaderBytes = 1024;

struct Parsed {
    HeaderParse parse;
    std::size_t used = 0;
    boost::beast::error_code error;
};

// Runs ParseBufferedHeader once on `bytes` with a fresh parser.
Parsed ParseOnce(std::string_view bytes, RequestParser& parser) {
    Parsed parsed{HeaderParse::kNeedMore, 0, {}};
    std::size_t scanned = 0;
    parsed.parse =
        ParseBufferedHeader(bytes, kMaxHeaderBytes, scanned, parser, parsed.used, parsed.error);
    return parsed;
}

// Parses a whole header and returns its framing fault; the header must parse.
FramingFault FaultOf(std::string_view bytes) {
    RequestParser parser;
    const Parsed parsed = ParseOnce(bytes, parser);
    EXPECT_EQ(parsed.parse, HeaderParse::kDone) << parsed.error.message();
    return FindFramingFault(parser.get());
}

TEST(ParseBufferedHeader, ParsesCompleteHeader) {
    RequestParser parser;
    const std::string_view bytes = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nrest";

    const Parsed parsed = ParseOnce(bytes, parser);

    EXPECT_EQ(parsed.parse, HeaderParse::kDone);
    EXPECT_EQ(parsed.used, bytes.size() - 4) << "only the header is consumed";
    EXPECT_EQ(parser.get().target(), "/healthz");
}

TEST(ParseBufferedHeader, WaitsForEmptyLine) {
    RequestParser parser;

    EXPECT_EQ(ParseOnce("GET /healthz HTTP/1.1\r\nHost: x\r\n", parser).parse,
              HeaderParse::kNeedMore);
}

TEST(ParseBufferedHeader, FindsEmptyLineSplitAcrossReads) {
    RequestParser parser;
    std::string bytes = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r";
    std::size_t scanned = 0;
    std::size_t used = 0;
    boost::beast::error_code error;
    ASSERT_EQ(ParseBufferedHeader(bytes, kMaxHeaderBytes, scanned, parser, used, error),
              HeaderParse::kNeedMore);
    bytes += "\n";

    EXPECT_EQ(ParseBufferedHeader(bytes, kMaxHeaderBytes, scanned, parser, used, error),
              HeaderParse::kDone);
}

TEST(ParseBufferedHeader, RejectsHeaderOverLimit) {
    RequestParser parser;
    const std::string bytes = "GET / HTTP/1.1\r\n" + std::string(kMaxHeaderBytes, 'a');

    EXPECT_EQ(ParseOnce(bytes, parser).parse, HeaderParse::kTooLarge);
}

TEST(ParseBufferedHeader, RejectsEmptyFieldLinesOverLimit) {
    RequestParser parser;
    std::string bytes = "GET / HTTP/1.1\r\n";
    while (bytes.size() <= kMaxHeaderBytes) {
        bytes += "X:\r\n";
    }
    bytes += "\r\n";

    EXPECT_EQ(ParseOnce(bytes, parser).parse, HeaderParse::kTooLarge);
}

TEST(ParseBufferedHeader, RejectsObsFold) {
    RequestParser parser;

    EXPECT_EQ(ParseOnce("GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n", parser).parse,
              HeaderParse::kObsFold);
}

TEST(ParseBufferedHeader, RejectsObsFoldWithTab) {
    RequestParser parser;

    EXPECT_EQ(ParseOnce("GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\nHost: x\r\n\r\n", parser).parse,
              HeaderParse::kObsFold);
}

TEST(ParseBufferedHeader, RejectsSpaceBeforeFirstField) {
    RequestParser parser;

    EXPECT_EQ(ParseOnce("GET / HTTP/1.1\r\n Host: x\r\n\r\n", parser).parse, HeaderParse::kObsFold);
}

TEST(ParseBufferedHeader, IgnoresSpaceInBody) {
    RequestParser parser;
    const std::string_view bytes = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\r\n ";

    EXPECT_EQ(ParseOnce(bytes, parser).parse, HeaderParse::kDone);
}

TEST(ParseBufferedHeader, ReportsParserError) {
    RequestParser parser;

    const Parsed parsed = ParseOnce("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", parser);

    EXPECT_EQ(parsed.parse, HeaderParse::kInvalid);
    EXPECT_TRUE(parsed.error);
}

TEST(ParseBufferedHeader, RejectsDifferingContentLengths) {
    RequestParser parser;

    const Parsed parsed = ParseOnce(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", parser);

    EXPECT_EQ(parsed.parse, HeaderParse::kInvalid);
}

TEST(FindFramingFault, AcceptsPlainRequest) {
    EXPECT_EQ(FaultOf("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: 2\r\n\r\n"),
              FramingFault::kNone);
}

TEST(FindFramingFault, AcceptsChunkedHttp11) {
    EXPECT_EQ(FaultOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
              FramingFault::kNone);
}

TEST(FindFramingFault, AcceptsHttp10) {
    EXPECT_EQ(FaultOf("GET / HTTP/1.0\r\n\r\n"), FramingFault::kNone);
}

TEST(ParseBufferedHeader, RejectsUnsupportedVersions) {
    for (const std::string_view version : {"0.9", "1.2", "2.0", "3.0", "9.9"}) {
        RequestParser parser;
        const std::string bytes = "GET / HTTP/" + std::string(version) + "\r\nHost: x\r\n\r\n";
        EXPECT_EQ(ParseOnce(bytes, parser).parse, HeaderParse::kUnsupportedVersion) << version;
    }
}

TEST(ParseBufferedHeader, MalformedVersionIsInvalid) {
    for (const std::string_view version : {"HTTP/2", "HTTP/1.10", "HTTPS/1.1", "HTTP/a.b"}) {
        RequestParser parser;
        const std::string bytes = "GET / " + std::string(version) + "\r\nHost: x\r\n\r\n";
        EXPECT_EQ(ParseOnce(bytes, parser).parse, HeaderParse::kInvalid) << version;
    }
}

TEST(FindFramingFault, RejectsTransferEncodingInHttp10) {
    EXPECT_EQ(FaultOf("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
              FramingFault::kTransferEncodingInHttp10);
}

TEST(FindFramingFault, RejectsUnframedBody) {
    EXPECT_EQ(FaultOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
              FramingFault::kUnframedBody);
}

TEST(FindFramingFault, RejectsCodingsBeforeChunked) {
    EXPECT_EQ(FaultOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
              FramingFault::kUnframedBody);
    EXPECT_EQ(FaultOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
              FramingFault::kUnframedBody);
}

TEST(FindFramingFault, AcceptsChunkedAlone) {
    EXPECT_EQ(FaultOf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked \r\n\r\n"),
              FramingFault::kNone);
}

// Beast 1.81 already rejects both orders of the two fields while parsing,
// so the header is built directly.
TEST(FindFramingFault, RejectsContentLengthWithEncoding) {
    RequestHeader header;
    header.version(11);
    header.set(boost::beast::http::field::transfer_encoding, "chunked");
    header.set(boost::beast::http::field::content_length, "3");

    EXPECT_EQ(FindFramingFault(header), FramingFault::kContentLengthAndEncoding);
}

TEST(ParseBufferedHeader, RejectsContentLengthAfterChunked) {
    RequestParser parser;

    EXPECT_EQ(ParseOnce("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        "Content-Length: 3\r\n\r\n",
                        parser)
                  .parse,
              HeaderParse::kInvalid);
}

TEST(FindFramingFault, RejectsDuplicateContentType) {
    EXPECT_EQ(FaultOf("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n"),
              FramingFault::kDuplicateContentType);
}

TEST(HeaderProblem, UnsupportedVersionIs505) {
    const Problem problem = HeaderProblem(HeaderParse::kUnsupportedVersion, {});

    EXPECT_EQ(problem.code, ErrorCode::kHttpVersionNotSupported);
    EXPECT_EQ(HttpStatusOf(problem.code), 505u);
    EXPECT_EQ(CodeName(problem.code), "http_version_not_supported");
}

TEST(FramingProblem, FaultsAreMalformedRequest) {
    for (const FramingFault fault :
         {FramingFault::kTransferEncodingInHttp10, FramingFault::kUnframedBody,
          FramingFault::kContentLengthAndEncoding, FramingFault::kDuplicateContentType}) {
        const Problem problem = FramingProblem(fault);
        EXPECT_EQ(problem.code, ErrorCode::kMalformedRequest) << static_cast<int>(fault);
        EXPECT_EQ(HttpStatusOf(problem.code), 400u) << static_cast<int>(fault);
    }
}

TEST(HeaderProblem, BrokenHeadersAreMalformedRequest) {
    namespace beast_http = boost::beast::http;
    const std::pair<HeaderParse, boost::beast::error_code> cases[] = {
        {HeaderParse::kTooLarge, {}},
        {HeaderParse::kObsFold, {}},
        {HeaderParse::kInvalid, beast_http::error::header_limit},
        {HeaderParse::kInvalid, beast_http::error::multiple_content_length},
        {HeaderParse::kInvalid, beast_http::error::bad_field},
        {HeaderParse::kInvalid, beast_http::error::bad_chunk},
    };
    for (const auto& [parse, error] : cases) {
        const Problem problem = HeaderProblem(parse, error);
        EXPECT_EQ(problem.code, ErrorCode::kMalformedRequest)
            << static_cast<int>(parse) << " " << error.message();
        EXPECT_EQ(HttpStatusOf(problem.code), 400u)
            << static_cast<int>(parse) << " " << error.message();
    }
}

TEST(HeaderProblem, BodyOverLimitIs413) {
    const Problem problem =
        HeaderProblem(HeaderParse::kInvalid, boost::beast::http::error::body_limit);

    EXPECT_EQ(problem.code, ErrorCode::kPayloadTooLarge);
    EXPECT_EQ(HttpStatusOf(problem.code), 413u);
}

}  // namespace
}  // namespace conveyor::http
