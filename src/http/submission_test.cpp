#include "http/submission.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <variant>

namespace conveyor::http {
namespace {

using Outcome = std::variant<Submission, Problem>;

SubmissionLimits FaultInjectionLimits() {
    SubmissionLimits limits;
    limits.fault_injection = true;
    return limits;
}

// Describes an outcome for failure messages.
std::string Describe(const Outcome& outcome) {
    if (std::holds_alternative<Submission>(outcome)) {
        return "accepted";
    }
    const Problem& problem = std::get<Problem>(outcome);
    std::string text = std::string(CodeName(problem.code)) + ": " + problem.detail;
    for (const FieldIssue& issue : problem.errors) {
        text += " [" + issue.field + ": " + issue.message + "]";
    }
    return text;
}

testing::AssertionResult IsAccepted(std::string_view body, const SubmissionLimits& limits = {}) {
    const Outcome outcome = ParseSubmission(body, limits);
    if (std::holds_alternative<Submission>(outcome)) {
        return testing::AssertionSuccess();
    }
    return testing::AssertionFailure() << body << " -> " << Describe(outcome);
}

testing::AssertionResult FailsWith(std::string_view body, ErrorCode code,
                                   const SubmissionLimits& limits = {}) {
    const Outcome outcome = ParseSubmission(body, limits);
    if (std::holds_alternative<Problem>(outcome) && std::get<Problem>(outcome).code == code) {
        return testing::AssertionSuccess();
    }
    return testing::AssertionFailure()
           << body << " -> " << Describe(outcome) << ", expected " << CodeName(code);
}

// Checks for validation_failed with an entry for `field` in `errors`.
testing::AssertionResult FailsOnField(std::string_view body, std::string_view field,
                                      const SubmissionLimits& limits = {}) {
    const Outcome outcome = ParseSubmission(body, limits);
    if (std::holds_alternative<Problem>(outcome)) {
        const Problem& problem = std::get<Problem>(outcome);
        if (problem.code == ErrorCode::kValidationFailed) {
            for (const FieldIssue& issue : problem.errors) {
                if (issue.field == field) {
                    return testing::AssertionSuccess();
                }
            }
        }
    }
    return testing::AssertionFailure()
           << body << " -> " << Describe(outcome) << ", expected validation_failed on " << field;
}

Submission ParseValid(std::string_view body, const SubmissionLimits& limits = {}) {
    Outcome outcome = ParseSubmission(body, limits);
    if (!std::holds_alternative<Submission>(outcome)) {
        ADD_FAILURE() << body << " -> " << Describe(outcome);
        return {};
    }
    return std::get<Submission>(std::move(outcome));
}

// Serializes `{"text": "x", "metadata": metadata}`.
std::string BodyWithMetadata(const boost::json::object& metadata) {
    return boost::json::serialize(boost::json::object{{"text", "x"}, {"metadata", metadata}});
}

std::string Repeat(std::string_view piece, int count) {
    std::string text;
    for (int i = 0; i < count; ++i) {
        text += piece;
    }
    return text;
}

TEST(ParseSubmission, AcceptsMinimalBody) {
    const Submission submission = ParseValid(R"({"text":"hello"})");
    EXPECT_EQ(submission.text, "hello");
    EXPECT_EQ(submission.type, "text.analyze");
    EXPECT_EQ(boost::json::parse(submission.params_json),
              boost::json::parse(R"({"top_n":5,"language":"english","stem":false})"));
    EXPECT_FALSE(submission.metadata_json.has_value());
    EXPECT_EQ(submission.max_attempts, 3);
    EXPECT_EQ(submission.request_hash.size(), 64u);
}

TEST(ParseSubmission, DefaultMaxAttemptsFromLimits) {
    SubmissionLimits limits;
    limits.default_max_attempts = 7;
    EXPECT_EQ(ParseValid(R"({"text":"hello"})", limits).max_attempts, 7);
}

TEST(ParseSubmission, AcceptsFullBody) {
    const Submission submission = ParseValid(R"({
        "text": "The quick brown fox",
        "type": "text.analyze",
        "params": {"top_n": 10, "language": "german", "stem": true},
        "max_attempts": 5,
        "metadata": {"customer": "acme"}
    })");
    EXPECT_EQ(submission.text, "The quick brown fox");
    EXPECT_EQ(submission.type, "text.analyze");
    EXPECT_EQ(boost::json::parse(submission.params_json),
              boost::json::parse(R"({"top_n":10,"language":"german","stem":true})"));
    EXPECT_EQ(submission.max_attempts, 5);
    ASSERT_TRUE(submission.metadata_json.has_value());
    EXPECT_EQ(boost::json::parse(*submission.metadata_json),
              boost::json::parse(R"({"customer":"acme"})"));
}

TEST(ParseSubmission, FillsMissingParams) {
    const Submission submission = ParseValid(R"({"text":"a","params":{"top_n":7}})");
    EXPECT_EQ(boost::json::parse(submission.params_json),
              boost::json::parse(R"({"top_n":7,"language":"english","stem":false})"));
}

TEST(ParseSubmission, AcceptsEmptyParams) {
    const Submission submission = ParseValid(R"({"text":"a","params":{}})");
    EXPECT_EQ(boost::json::parse(submission.params_json),
              boost::json::parse(R"({"top_n":5,"language":"english","stem":false})"));
}

TEST(ParseSubmission, AcceptsEmptyText) {
    EXPECT_EQ(ParseValid(R"({"text":""})").text, "");
}

TEST(ParseSubmission, KeepsNulInText) {
    EXPECT_EQ(ParseValid(R"({"text":"a\u0000b"})").text, std::string("a\0b", 3));
}

TEST(ParseSubmission, DecodesEscapesAndUtf8) {
    EXPECT_EQ(ParseValid(R"({"text":"Stra\u00dfe \"q\" \\ \n"})").text,
              "Stra\xc3\x9f"
              "e \"q\" \\ \n");
    EXPECT_EQ(ParseValid("{\"text\":\"Stra\xc3\x9f"
                         "e \xf0\x9f\x99\x82\"}")
                  .text,
              "Stra\xc3\x9f"
              "e \xf0\x9f\x99\x82");
}

TEST(ParseSubmission, RequiresText) {
    EXPECT_TRUE(FailsOnField(R"({})", "text"));
    EXPECT_TRUE(FailsOnField(R"({"type":"text.analyze"})", "text"));
}

TEST(ParseSubmission, RejectsNonStringText) {
    for (const std::string_view body : {R"({"text":1})", R"({"text":null})", R"({"text":[]})",
                                        R"({"text":{}})", R"({"text":true})"}) {
        EXPECT_TRUE(FailsOnField(body, "text"));
    }
}

TEST(ParseSubmission, RejectsNonStringType) {
    EXPECT_TRUE(FailsOnField(R"({"text":"a","type":1})", "type"));
    EXPECT_TRUE(FailsOnField(R"({"text":"a","type":null})", "type"));
}

TEST(ParseSubmission, RejectsUnknownType) {
    for (const std::string_view body :
         {R"({"text":"a","type":"text.summarize"})", R"({"text":"a","type":""})",
          R"({"text":"a","type":"TEXT.ANALYZE"})", R"({"text":"a","type":"text.analyze "})"}) {
        EXPECT_TRUE(FailsWith(body, ErrorCode::kUnknownTaskType));
    }
}

TEST(ParseSubmission, RejectsNonObjectParams) {
    for (const std::string_view body :
         {R"({"text":"a","params":[]})", R"({"text":"a","params":1})",
          R"({"text":"a","params":"top_n"})", R"({"text":"a","params":null})"}) {
        EXPECT_TRUE(FailsOnField(body, "params"));
    }
}

TEST(ParseSubmission, AcceptsTopNBounds) {
    EXPECT_TRUE(IsAccepted(R"({"text":"a","params":{"top_n":1}})"));
    EXPECT_TRUE(IsAccepted(R"({"text":"a","params":{"top_n":100}})"));
}

TEST(ParseSubmission, RejectsInvalidTopN) {
    for (const std::string_view top_n :
         {"0", "101", "-1", "5.5", "\"5\"", "true", "null", "[5]", "18446744073709551615"}) {
        const std::string body = R"({"text":"a","params":{"top_n":)" + std::string(top_n) + "}}";
        EXPECT_TRUE(FailsOnField(body, "params.top_n"));
    }
}

TEST(ParseSubmission, AcceptsOtherLanguage) {
    const Submission submission = ParseValid(R"({"text":"a","params":{"language":"french"}})");
    EXPECT_EQ(boost::json::parse(submission.params_json).at("language"), "french");
}

TEST(ParseSubmission, RejectsInvalidLanguage) {
    for (const std::string_view language : {"\"klingon\"", "\"\"", "5", "null", "[\"english\"]"}) {
        const std::string body =
            R"({"text":"a","params":{"language":)" + std::string(language) + "}}";
        EXPECT_TRUE(FailsOnField(body, "params.language"));
    }
}

TEST(ParseSubmission, RejectsInvalidStem) {
    for (const std::string_view stem : {"\"true\"", "1", "0", "null"}) {
        const std::string body = R"({"text":"a","params":{"stem":)" + std::string(stem) + "}}";
        EXPECT_TRUE(FailsOnField(body, "params.stem"));
    }
}

TEST(ParseSubmission, RejectsUnknownParam) {
    EXPECT_TRUE(FailsOnField(R"({"text":"a","params":{"topn":5}})", "params.topn"));
}

TEST(ParseSubmission, AcceptsMaxAttemptsBounds) {
    EXPECT_EQ(ParseValid(R"({"text":"a","max_attempts":1})").max_attempts, 1);
    EXPECT_EQ(ParseValid(R"({"text":"a","max_attempts":20})").max_attempts, 20);
}

TEST(ParseSubmission, RejectsInvalidMaxAttempts) {
    for (const std::string_view max_attempts :
         {"0", "21", "-1", "2.5", "\"3\"", "null", "true", "4294967297", "1e30"}) {
        const std::string body = R"({"text":"a","max_attempts":)" + std::string(max_attempts) + "}";
        EXPECT_TRUE(FailsOnField(body, "max_attempts"));
    }
}

TEST(ParseSubmission, RejectsUnknownMember) {
    EXPECT_TRUE(FailsOnField(R"({"text":"a","txt":"b"})", "txt"));
    EXPECT_TRUE(FailsOnField(R"({"text":"a","Text":"b"})", "Text"));
    EXPECT_TRUE(FailsOnField(R"({"text":"a","priority":1})", "priority"));
}

TEST(ParseSubmission, ReportsEveryIssue) {
    const Outcome outcome = ParseSubmission(
        R"({"text":1,"max_attempts":0,"params":{"top_n":0,"stem":"x"},"extra":1})", {});
    ASSERT_TRUE(std::holds_alternative<Problem>(outcome));
    const Problem& problem = std::get<Problem>(outcome);
    EXPECT_EQ(problem.code, ErrorCode::kValidationFailed);
    std::vector<std::string> fields;
    for (const FieldIssue& issue : problem.errors) {
        fields.push_back(issue.field);
        EXPECT_FALSE(issue.message.empty()) << issue.field;
    }
    for (const std::string_view field :
         {"text", "max_attempts", "params.top_n", "params.stem", "extra"}) {
        EXPECT_NE(std::find(fields.begin(), fields.end(), field), fields.end()) << field;
    }
}

TEST(ParseSubmission, RejectsFaultKeysWithoutFlag) {
    EXPECT_TRUE(
        FailsOnField(R"({"text":"a","params":{"fail_attempts":1}})", "params.fail_attempts"));
    EXPECT_TRUE(FailsOnField(R"({"text":"a","params":{"fail_permanently":true}})",
                             "params.fail_permanently"));
    EXPECT_TRUE(FailsOnField(R"({"text":"a","params":{"delay_ms":10}})", "params.delay_ms"));
}

TEST(ParseSubmission, KeepsFaultKeysWithFlag) {
    const Submission submission = ParseValid(
        R"({"text":"a","params":{"fail_attempts":2,"fail_permanently":true,"delay_ms":250}})",
        FaultInjectionLimits());
    EXPECT_EQ(boost::json::parse(submission.params_json),
              boost::json::parse(R"({"top_n":5,"language":"english","stem":false,
                                     "fail_attempts":2,"fail_permanently":true,"delay_ms":250})"));
}

TEST(ParseSubmission, NoFaultKeysUnlessSent) {
    const Submission submission = ParseValid(R"({"text":"a"})", FaultInjectionLimits());
    EXPECT_EQ(boost::json::parse(submission.params_json),
              boost::json::parse(R"({"top_n":5,"language":"english","stem":false})"));
}

TEST(ParseSubmission, AcceptsFaultRangeBounds) {
    const SubmissionLimits limits = FaultInjectionLimits();
    for (const std::string_view params :
         {R"({"fail_attempts":0})", R"({"fail_attempts":20})", R"({"fail_permanently":false})",
          R"({"delay_ms":0})", R"({"delay_ms":600000})"}) {
        EXPECT_TRUE(IsAccepted(R"({"text":"a","params":)" + std::string(params) + "}", limits));
    }
}

TEST(ParseSubmission, RejectsFaultValuesOutOfRange) {
    const SubmissionLimits limits = FaultInjectionLimits();
    for (const std::string_view value : {"-1", "21", "1.5", "\"2\"", "null", "true"}) {
        const std::string body =
            R"({"text":"a","params":{"fail_attempts":)" + std::string(value) + "}}";
        EXPECT_TRUE(FailsOnField(body, "params.fail_attempts", limits));
    }
    for (const std::string_view value : {"1", "\"true\"", "null"}) {
        const std::string body =
            R"({"text":"a","params":{"fail_permanently":)" + std::string(value) + "}}";
        EXPECT_TRUE(FailsOnField(body, "params.fail_permanently", limits));
    }
    for (const std::string_view value : {"-1", "600001", "2.5", "\"10\"", "null"}) {
        const std::string body = R"({"text":"a","params":{"delay_ms":)" + std::string(value) + "}}";
        EXPECT_TRUE(FailsOnField(body, "params.delay_ms", limits));
    }
}

TEST(ParseSubmission, FaultFlagStillChecksOtherParams) {
    EXPECT_TRUE(FailsOnField(R"({"text":"a","params":{"fail_attempts":1,"top_n":0}})",
                             "params.top_n", FaultInjectionLimits()));
}

TEST(ParseSubmission, RejectsMalformedJson) {
    for (const std::string_view body :
         {"", "   ", "{", "nope", R"({"text":"a",})", R"({"text":"a"} x)", R"({'text':'a'})",
          R"({"text":"a" "b"})", R"({"text":"a)", R"({text:"a"})", R"({"text":"\x"})"}) {
        EXPECT_TRUE(FailsWith(body, ErrorCode::kInvalidJson));
    }
}

TEST(ParseSubmission, RejectsNonObjectJson) {
    for (const std::string_view body :
         {"[]", R"("text")", "42", "null", "true", R"([{"text":"a"}])"}) {
        EXPECT_TRUE(FailsWith(body, ErrorCode::kInvalidJson));
    }
}

TEST(ParseSubmission, RejectsInvalidUtf8) {
    for (const std::string_view body :
         {"{\"text\":\"\xff\"}", "{\"text\":\"a\xc3\"}", "{\"text\":\"\xc0\xaf\"}",
          "{\"text\":\"\xed\xa0\x80\"}", "{\"text\":\"\xf4\x90\x80\x80\"}",
          "{\"text\":\"a\",\"metadata\":{\"\xfe\":\"b\"}}"}) {
        EXPECT_TRUE(FailsWith(body, ErrorCode::kInvalidJson));
    }
}

TEST(ParseSubmission, RejectsLoneSurrogateEscapes) {
    for (const std::string_view body :
         {R"({"text":"\ud800"})", R"({"text":"\udc00"})", R"({"text":"a\uDBFFb"})",
          R"({"text":"\ud800\ud800"})", R"({"text":"\ude00\ud83d"})", R"({"text":"\ud83d\u0041"})",
          R"({"text":"\ud83d"})"}) {
        EXPECT_TRUE(FailsOnField(body, "text"));
    }
}

TEST(ParseSubmission, MalformedJsonWinsOverSurrogate) {
    // A body that is broken apart from the surrogate is not well-formed JSON.
    EXPECT_TRUE(FailsWith(R"({"text":"\ud800")", ErrorCode::kInvalidJson));
    EXPECT_TRUE(FailsWith(R"({"text":"\ud800",})", ErrorCode::kInvalidJson));
    EXPECT_TRUE(FailsWith("{\"text\":\"\\ud800\xff\"}", ErrorCode::kInvalidJson));
}

TEST(ParseSubmission, AcceptsSurrogatePair) {
    EXPECT_EQ(ParseValid(R"({"text":"\ud83d\ude00"})").text, "\xf0\x9f\x98\x80");
    EXPECT_EQ(ParseValid(R"({"text":"\uD83D\uDE00"})").text, "\xf0\x9f\x98\x80");
}

TEST(ParseSubmission, AcceptsEscapedBackslashBeforeU) {
    EXPECT_EQ(ParseValid(R"({"text":"\\ud800"})").text, R"(\ud800)");
}

TEST(ParseSubmission, AcceptsTextAtLimit) {
    SubmissionLimits limits;
    limits.max_text_bytes = 8;
    EXPECT_TRUE(IsAccepted(R"({"text":"12345678"})", limits));
    EXPECT_TRUE(IsAccepted("{\"text\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", limits));
    // Each escape \u00e9 decodes to two bytes of UTF-8, so the text is eight bytes.
    EXPECT_TRUE(IsAccepted(R"({"text":"\u00e9\u00e9\u00e9\u00e9"})", limits));
}

TEST(ParseSubmission, RejectsTextOverLimit) {
    SubmissionLimits limits;
    limits.max_text_bytes = 8;
    EXPECT_TRUE(FailsWith(R"({"text":"123456789"})", ErrorCode::kPayloadTooLarge, limits));
    // Five characters, but ten bytes of UTF-8.
    EXPECT_TRUE(FailsWith(R"({"text":"ééééé"})", ErrorCode::kPayloadTooLarge, limits));
}

TEST(ParseSubmission, DefaultLimitIsOneMebibyte) {
    const std::string at_limit(1'048'576, 'a');
    EXPECT_TRUE(IsAccepted(R"({"text":")" + at_limit + R"("})"));
    EXPECT_TRUE(FailsWith(R"({"text":")" + at_limit + R"(a"})", ErrorCode::kPayloadTooLarge));
}

TEST(ParseSubmission, AcceptsEmptyMetadata) {
    const Submission submission = ParseValid(R"({"text":"a","metadata":{}})");
    ASSERT_TRUE(submission.metadata_json.has_value());
    EXPECT_EQ(boost::json::parse(*submission.metadata_json), boost::json::object{});
}

TEST(ParseSubmission, EchoesMetadata) {
    const Submission submission =
        ParseValid(R"({"text":"a","metadata":{"b":"2","a":"1","empty":""}})");
    ASSERT_TRUE(submission.metadata_json.has_value());
    EXPECT_EQ(boost::json::parse(*submission.metadata_json),
              boost::json::parse(R"({"b":"2","a":"1","empty":""})"));
}

TEST(ParseSubmission, AcceptsSixteenMetadataEntries) {
    boost::json::object metadata;
    for (int i = 0; i < 16; ++i) {
        metadata["key" + std::to_string(i)] = "value";
    }
    EXPECT_TRUE(IsAccepted(BodyWithMetadata(metadata)));
}

TEST(ParseSubmission, RejectsSeventeenMetadataEntries) {
    boost::json::object metadata;
    for (int i = 0; i < 17; ++i) {
        metadata["key" + std::to_string(i)] = "value";
    }
    EXPECT_TRUE(FailsOnField(BodyWithMetadata(metadata), "metadata"));
}

TEST(ParseSubmission, RejectsNonObjectMetadata) {
    for (const std::string_view body :
         {R"({"text":"a","metadata":[]})", R"({"text":"a","metadata":"x"})",
          R"({"text":"a","metadata":null})", R"({"text":"a","metadata":1})"}) {
        EXPECT_TRUE(FailsOnField(body, "metadata"));
    }
}

TEST(ParseSubmission, RejectsEmptyMetadataKey) {
    EXPECT_TRUE(FailsOnField(R"({"text":"a","metadata":{"":"v"}})", "metadata."));
}

TEST(ParseSubmission, MetadataKeyLengthInCodePoints) {
    EXPECT_TRUE(IsAccepted(BodyWithMetadata({{Repeat("k", 64), "v"}})));
    // 64 characters of two bytes each.
    EXPECT_TRUE(IsAccepted(BodyWithMetadata({{Repeat("\xc3\xa9", 64), "v"}})));
    const std::string long_key = Repeat("k", 65);
    EXPECT_TRUE(FailsOnField(BodyWithMetadata({{long_key, "v"}}), "metadata." + long_key));
    const std::string long_wide_key = Repeat("\xc3\xa9", 65);
    EXPECT_TRUE(
        FailsOnField(BodyWithMetadata({{long_wide_key, "v"}}), "metadata." + long_wide_key));
}

TEST(ParseSubmission, MetadataValueLengthInCodePoints) {
    EXPECT_TRUE(IsAccepted(BodyWithMetadata({{"k", Repeat("v", 256)}})));
    // 256 characters of three and of four bytes each.
    EXPECT_TRUE(IsAccepted(BodyWithMetadata({{"k", Repeat("\xe2\x82\xac", 256)}})));
    EXPECT_TRUE(IsAccepted(BodyWithMetadata({{"k", Repeat("\xf0\x9f\x98\x80", 256)}})));
    EXPECT_TRUE(FailsOnField(BodyWithMetadata({{"k", Repeat("v", 257)}}), "metadata.k"));
    EXPECT_TRUE(FailsOnField(BodyWithMetadata({{"k", Repeat("\xe2\x82\xac", 257)}}), "metadata.k"));
}

TEST(ParseSubmission, RejectsNonStringMetadataValue) {
    for (const std::string_view value : {"1", "null", "true", "{}", "[]"}) {
        const std::string body = R"({"text":"a","metadata":{"k":)" + std::string(value) + "}}";
        EXPECT_TRUE(FailsOnField(body, "metadata.k"));
    }
}

TEST(ParseSubmission, HashIgnoresOrderAndWhitespace) {
    const Submission compact =
        ParseValid(R"({"text":"a","params":{"top_n":3,"stem":true},"max_attempts":2})");
    const Submission spread = ParseValid(R"( {
        "max_attempts" : 2,
        "params" : { "stem" : true, "top_n" : 3 },
        "text" : "a"
    } )");
    EXPECT_EQ(compact.request_hash, spread.request_hash);
}

TEST(ParseSubmission, HashDependsOnValues) {
    const std::string base = ParseValid(R"({"text":"a"})").request_hash;
    EXPECT_NE(ParseValid(R"({"text":"b"})").request_hash, base);
    EXPECT_NE(ParseValid(R"({"text":"a","max_attempts":3})").request_hash, base);
    EXPECT_NE(ParseValid(R"({"text":"a","params":{"top_n":5}})").request_hash, base);
}

TEST(CanonicalJsonHash, IgnoresMemberOrder) {
    EXPECT_EQ(CanonicalJsonHash(R"({"a":1,"b":[1,2],"c":{"x":"y","z":null}})"),
              CanonicalJsonHash(R"({"c":{"z":null,"x":"y"},"b":[1,2],"a":1})"));
}

TEST(CanonicalJsonHash, IgnoresWhitespace) {
    EXPECT_EQ(CanonicalJsonHash(R"({"a":[1,2,{"b":true}]})"),
              CanonicalJsonHash(" {\n\t\"a\" : [ 1 , 2 , { \"b\" : true } ] }\r\n"));
}

TEST(CanonicalJsonHash, IgnoresEscapeSpelling) {
    EXPECT_EQ(CanonicalJsonHash(R"({"k":"A\u00e9\/"})"),
              CanonicalJsonHash("{\"\\u006b\":\"A\xc3\xa9/\"}"));
}

TEST(CanonicalJsonHash, DependsOnValues) {
    const std::string base = CanonicalJsonHash(R"({"a":1})");
    EXPECT_NE(CanonicalJsonHash(R"({"a":2})"), base);
    EXPECT_NE(CanonicalJsonHash(R"({"a":"1"})"), base);
    EXPECT_NE(CanonicalJsonHash(R"({"a":true})"), base);
    EXPECT_NE(CanonicalJsonHash(R"({"a":[1]})"), base);
    EXPECT_NE(CanonicalJsonHash(R"({"b":1})"), base);
    EXPECT_NE(CanonicalJsonHash(R"({"a":1,"b":1})"), base);
    EXPECT_NE(CanonicalJsonHash(R"({})"), base);
}

TEST(CanonicalJsonHash, KeepsArrayOrder) {
    EXPECT_NE(CanonicalJsonHash("[1,2]"), CanonicalJsonHash("[2,1]"));
}

TEST(CanonicalJsonHash, SeparatesNullFromMissing) {
    EXPECT_NE(CanonicalJsonHash(R"({"a":null})"), CanonicalJsonHash("{}"));
}

TEST(CanonicalJsonHash, IsLowerHexSha256) {
    const std::string hash = CanonicalJsonHash("{}");
    EXPECT_EQ(hash.size(), 64u);
    EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos) << hash;
}

TEST(HasLoneSurrogateEscape, FindsLoneSurrogates) {
    EXPECT_TRUE(HasLoneSurrogateEscape(R"("\ud800")"));
    EXPECT_TRUE(HasLoneSurrogateEscape(R"("\uDFFF")"));
    EXPECT_TRUE(HasLoneSurrogateEscape(R"("\ud800x")"));
    EXPECT_TRUE(HasLoneSurrogateEscape(R"("\ud800\u0041")"));
    EXPECT_TRUE(HasLoneSurrogateEscape(R"("\\\ud800")"));
    EXPECT_TRUE(HasLoneSurrogateEscape(R"("\ud83d\ude00\udc00")"));
}

TEST(HasLoneSurrogateEscape, IgnoresPairsAndOtherEscapes) {
    EXPECT_FALSE(HasLoneSurrogateEscape(R"("\ud83d\ude00")"));
    EXPECT_FALSE(HasLoneSurrogateEscape(R"("\u0041\u00e9\uffff")"));
    EXPECT_FALSE(HasLoneSurrogateEscape(R"("\\ud800")"));
    EXPECT_FALSE(HasLoneSurrogateEscape(R"("\\\\ud800")"));
    EXPECT_FALSE(HasLoneSurrogateEscape(R"("plain")"));
    EXPECT_FALSE(HasLoneSurrogateEscape(""));
}

}  // namespace
}  // namespace conveyor::http

namespace conveyor::http {
namespace {

TEST(FindDuplicateMember, FindsRepeatedTopLevelMember) {
    EXPECT_EQ(FindDuplicateMember(R"({"text":"a","text":"b"})"), "text");
}

TEST(FindDuplicateMember, FindsRepeatedNestedMember) {
    EXPECT_EQ(FindDuplicateMember(R"({"text":"a","metadata":{"k":"1","k":"2"}})"), "k");
}

TEST(FindDuplicateMember, AllowsSameNameInSeparateObjects) {
    EXPECT_EQ(FindDuplicateMember(R"({"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]})"),
              std::nullopt);
}

TEST(FindDuplicateMember, ComparesDecodedNames) {
    EXPECT_EQ(FindDuplicateMember(R"({"text":"a","t\u0065xt":"b"})"), "text");
}

TEST(ParseSubmission, RepeatedMemberIsInvalidJson) {
    const auto parsed =
        ParseSubmission(R"({"text":"a","max_attempts":2,"max_attempts":3})", SubmissionLimits{});
    ASSERT_TRUE(std::holds_alternative<Problem>(parsed));
    EXPECT_EQ(std::get<Problem>(parsed).code, ErrorCode::kInvalidJson);
}

TEST(Submission, WithoutHashLeavesDigestEmpty) {
    const Outcome with = ParseSubmission(R"({"text":"a b"})", SubmissionLimits{}, true);
    const Outcome without = ParseSubmission(R"({"text":"a b"})", SubmissionLimits{}, false);

    ASSERT_TRUE(std::holds_alternative<Submission>(with));
    ASSERT_TRUE(std::holds_alternative<Submission>(without));
    EXPECT_EQ(std::get<Submission>(with).request_hash.size(), 64u);
    EXPECT_TRUE(std::get<Submission>(without).request_hash.empty());
    EXPECT_EQ(std::get<Submission>(without).text, "a b");
}

}  // namespace
}  // namespace conveyor::http
