#include "http/problem.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

namespace conveyor::http {
namespace {

boost::json::object ParseProblem(const Problem& problem) {
    boost::json::error_code error;
    const boost::json::value body = boost::json::parse(ToJson(problem), error);
    EXPECT_FALSE(error) << "the problem body is not valid JSON: " << error.message();
    return body.is_object() ? body.get_object() : boost::json::object{};
}

TEST(ProblemJson, HasEveryMember) {
    const boost::json::object body =
        ParseProblem({ErrorCode::kTaskNotFound, "No task has the id x.", {}});
    EXPECT_EQ(body.at("type"), "urn:conveyor:problem:task_not_found");
    EXPECT_EQ(body.at("title"), "Task not found");
    EXPECT_EQ(body.at("status"), 404);
    EXPECT_EQ(body.at("detail"), "No task has the id x.");
    EXPECT_EQ(body.at("code"), "task_not_found");
    EXPECT_FALSE(body.contains("errors"));
}

TEST(ProblemJson, MalformedRequestHasOwnTitle) {
    const boost::json::object body =
        ParseProblem({ErrorCode::kMalformedRequest, "Send one Content-Type header.", {}});
    EXPECT_EQ(body.at("type"), "urn:conveyor:problem:malformed_request");
    EXPECT_EQ(body.at("title"), "Malformed HTTP request");
    EXPECT_EQ(body.at("status"), 400);
    EXPECT_EQ(body.at("code"), "malformed_request");
}

// A detail may quote request bytes, such as the name of a query parameter
// written %EA, which decodes to a byte that is not UTF-8 on its own.
TEST(ProblemJson, ReplacesInvalidUtf8InDetail) {
    const boost::json::object body = ParseProblem({ErrorCode::kInvalidParameter,
                                                   "Unknown query parameter cr\xEA"
                                                   "ated.",
                                                   {}});
    EXPECT_EQ(body.at("detail"),
              "Unknown query parameter cr\xEF\xBF\xBD"
              "ated.");
}

TEST(ProblemJson, ReplacesEachIllFormedSequence) {
    // A truncated three-byte sequence, an overlong form, an encoded
    // surrogate and a lone continuation byte each become one U+FFFD.
    const boost::json::object body = ParseProblem({ErrorCode::kInvalidParameter,
                                                   "a\xE2\x82"
                                                   "b\xC0\xAF"
                                                   "c\xED\xA0\x80"
                                                   "d\x80",
                                                   {}});
    const std::string replacement = "\xEF\xBF\xBD";
    const std::string expected = "a" + replacement + "b" + replacement + replacement + "c" +
                                 replacement + replacement + replacement + "d" + replacement;
    EXPECT_EQ(body.at("detail").as_string(), expected);
}

TEST(ProblemJson, KeepsValidUtf8) {
    const std::string detail = "caf\xC3\xA9 \xE6\x9D\xB1 \xF0\x9F\x98\x80";
    const boost::json::object body = ParseProblem({ErrorCode::kInvalidParameter, detail, {}});
    EXPECT_EQ(body.at("detail").as_string(), detail);
}

TEST(ProblemJson, ReplacesInvalidUtf8InErrors) {
    const boost::json::object body = ParseProblem(
        {ErrorCode::kValidationFailed, "Invalid.", {{"metadata.\xFF", "must be a string"}}});
    EXPECT_EQ(body.at("errors").at(0).at("field"), "metadata.\xEF\xBF\xBD");
}

}  // namespace
}  // namespace conveyor::http
