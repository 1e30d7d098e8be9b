#include "tasks/task_type.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor {
namespace {

const TaskType& TextAnalyze() {
    const TaskType* type = FindTaskType("text.analyze");
    if (type == nullptr) {
        throw std::runtime_error("text.analyze is not registered");
    }
    return *type;
}

boost::json::object ParseObject(std::string_view json) {
    return boost::json::parse(json).as_object();
}

std::string Fields(const std::vector<FieldIssue>& issues) {
    std::string text;
    for (const FieldIssue& issue : issues) {
        text += issue.field + " ";
    }
    return text;
}

// Normalizes `params_json` and expects exactly one issue, on `field`.
void ExpectParamIssue(std::string_view params_json, std::string_view field) {
    std::vector<FieldIssue> issues;
    const auto effective = TextAnalyze().NormalizeParams(ParseObject(params_json), issues);
    EXPECT_FALSE(effective.has_value()) << params_json;
    ASSERT_EQ(issues.size(), 1u) << params_json << " -> " << Fields(issues);
    EXPECT_EQ(issues[0].field, field) << params_json;
    EXPECT_FALSE(issues[0].message.empty()) << params_json;
}

boost::json::object NormalizeValid(std::string_view params_json) {
    std::vector<FieldIssue> issues;
    const auto effective = TextAnalyze().NormalizeParams(ParseObject(params_json), issues);
    EXPECT_TRUE(issues.empty()) << params_json << " -> " << Fields(issues);
    if (!effective.has_value()) {
        ADD_FAILURE() << params_json << " was rejected";
        return {};
    }
    return *effective;
}

TEST(FindTaskType, FindsTextAnalyze) {
    const TaskType* type = FindTaskType("text.analyze");
    ASSERT_NE(type, nullptr);
    EXPECT_EQ(type->Name(), "text.analyze");
}

TEST(FindTaskType, UnknownNameIsNull) {
    EXPECT_EQ(FindTaskType(""), nullptr);
    EXPECT_EQ(FindTaskType("text.summarize"), nullptr);
    EXPECT_EQ(FindTaskType("Text.Analyze"), nullptr);
    EXPECT_EQ(FindTaskType("text.analyze "), nullptr);
    EXPECT_EQ(FindTaskType("text"), nullptr);
}

TEST(NormalizeParams, FillsDefaults) {
    EXPECT_EQ(NormalizeValid("{}"),
              ParseObject(R"({"top_n":5,"language":"english","stem":false})"));
}

TEST(NormalizeParams, KeepsGivenValues) {
    EXPECT_EQ(NormalizeValid(R"({"top_n":100,"language":"russian","stem":true})"),
              ParseObject(R"({"top_n":100,"language":"russian","stem":true})"));
    EXPECT_EQ(NormalizeValid(R"({"top_n":1})"),
              ParseObject(R"({"top_n":1,"language":"english","stem":false})"));
}

TEST(NormalizeParams, AcceptsEveryListedLanguage) {
    for (const std::string_view language :
         {"danish", "dutch", "english", "finnish", "french", "german", "hungarian", "italian",
          "nepali", "norwegian", "portuguese", "russian", "spanish", "swedish", "turkish"}) {
        boost::json::object params;
        params["language"] = language;
        std::vector<FieldIssue> issues;
        const auto effective = TextAnalyze().NormalizeParams(params, issues);
        ASSERT_TRUE(effective.has_value()) << language << " -> " << Fields(issues);
        EXPECT_EQ(effective->at("language").as_string(), language);
    }
}

TEST(NormalizeParams, RejectsInvalidTopN) {
    for (const std::string_view value : {"0", "101", "-5", "2.5", "\"5\"", "true", "null", "{}",
                                         "9223372036854775807", "18446744073709551615"}) {
        ExpectParamIssue(R"({"top_n":)" + std::string(value) + "}", "params.top_n");
    }
}

TEST(NormalizeParams, RejectsInvalidLanguage) {
    for (const std::string_view value : {"\"klingon\"", "\"\"", "\"english \"", "1", "null"}) {
        ExpectParamIssue(R"({"language":)" + std::string(value) + "}", "params.language");
    }
}

TEST(NormalizeParams, RejectsInvalidStem) {
    for (const std::string_view value : {"\"false\"", "0", "1", "null", "[]"}) {
        ExpectParamIssue(R"({"stem":)" + std::string(value) + "}", "params.stem");
    }
}

TEST(NormalizeParams, RejectsUnknownKey) {
    ExpectParamIssue(R"({"topn":5})", "params.topn");
    ExpectParamIssue(R"({"fail_attempts":1})", "params.fail_attempts");
}

TEST(NormalizeParams, ReportsEachInvalidKey) {
    std::vector<FieldIssue> issues;
    const auto effective = TextAnalyze().NormalizeParams(
        ParseObject(R"({"top_n":0,"language":"x","stem":1,"other":2})"), issues);
    EXPECT_FALSE(effective.has_value());
    EXPECT_EQ(issues.size(), 4u) << Fields(issues);
}

TEST(NormalizeParams, KeepsEarlierIssues) {
    // The list may already contain issues of other members. Valid params still
    // produce a value and leave the list as it was.
    std::vector<FieldIssue> issues = {{"text", "is required"}};
    const auto effective = TextAnalyze().NormalizeParams(ParseObject(R"({"top_n":3})"), issues);
    EXPECT_TRUE(effective.has_value());
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(issues[0].field, "text");
}

TEST(ExtractFaultInjection, DisabledLeavesParams) {
    boost::json::object params = ParseObject(R"({"fail_attempts":2,"top_n":3})");
    std::vector<FieldIssue> issues;
    const FaultInjection fault = ExtractFaultInjection(params, false, issues);
    EXPECT_EQ(fault.fail_attempts, 0);
    EXPECT_FALSE(fault.fail_permanently);
    EXPECT_FALSE(fault.delay_ms.has_value());
    EXPECT_TRUE(issues.empty());
    EXPECT_EQ(params, ParseObject(R"({"fail_attempts":2,"top_n":3})"));
}

TEST(ExtractFaultInjection, EnabledRemovesKeys) {
    boost::json::object params =
        ParseObject(R"({"fail_attempts":2,"fail_permanently":true,"delay_ms":250,"top_n":3})");
    std::vector<FieldIssue> issues;
    const FaultInjection fault = ExtractFaultInjection(params, true, issues);
    EXPECT_EQ(fault.fail_attempts, 2);
    EXPECT_TRUE(fault.fail_permanently);
    ASSERT_TRUE(fault.delay_ms.has_value());
    EXPECT_EQ(*fault.delay_ms, 250);
    EXPECT_TRUE(issues.empty()) << Fields(issues);
    EXPECT_EQ(params, ParseObject(R"({"top_n":3})"));
}

TEST(ExtractFaultInjection, EnabledWithoutKeys) {
    boost::json::object params = ParseObject(R"({"top_n":3})");
    std::vector<FieldIssue> issues;
    const FaultInjection fault = ExtractFaultInjection(params, true, issues);
    EXPECT_EQ(fault.fail_attempts, 0);
    EXPECT_FALSE(fault.fail_permanently);
    EXPECT_FALSE(fault.delay_ms.has_value());
    EXPECT_TRUE(issues.empty());
    EXPECT_EQ(params, ParseObject(R"({"top_n":3})"));
}

TEST(ExtractFaultInjection, AcceptsRangeBounds) {
    for (const std::string_view json :
         {R"({"fail_attempts":0})", R"({"fail_attempts":20})", R"({"delay_ms":0})",
          R"({"delay_ms":600000})", R"({"fail_permanently":false})"}) {
        boost::json::object params = ParseObject(json);
        std::vector<FieldIssue> issues;
        ExtractFaultInjection(params, true, issues);
        EXPECT_TRUE(issues.empty()) << json << " -> " << Fields(issues);
        EXPECT_TRUE(params.empty()) << json;
    }
}

TEST(ExtractFaultInjection, RejectsOutOfRange) {
    const std::vector<std::pair<std::string_view, std::string_view>> cases = {
        {R"({"fail_attempts":-1})", "params.fail_attempts"},
        {R"({"fail_attempts":21})", "params.fail_attempts"},
        {R"({"fail_attempts":1.5})", "params.fail_attempts"},
        {R"({"fail_attempts":"1"})", "params.fail_attempts"},
        {R"({"fail_attempts":18446744073709551615})", "params.fail_attempts"},
        {R"({"fail_permanently":1})", "params.fail_permanently"},
        {R"({"fail_permanently":"true"})", "params.fail_permanently"},
        {R"({"delay_ms":-1})", "params.delay_ms"},
        {R"({"delay_ms":600001})", "params.delay_ms"},
        {R"({"delay_ms":0.5})", "params.delay_ms"},
        {R"({"delay_ms":null})", "params.delay_ms"},
    };
    for (const auto& [json, field] : cases) {
        boost::json::object params = ParseObject(json);
        std::vector<FieldIssue> issues;
        ExtractFaultInjection(params, true, issues);
        ASSERT_EQ(issues.size(), 1u) << json;
        EXPECT_EQ(issues[0].field, field) << json;
        EXPECT_TRUE(params.empty()) << json << ": the key must be removed even when invalid";
    }
}

TEST(ReadFaultInjection, ReadsStoredKeys) {
    const FaultInjection fault = ReadFaultInjection(
        ParseObject(R"({"top_n":5,"fail_attempts":3,"fail_permanently":true,"delay_ms":1500})"));
    EXPECT_EQ(fault.fail_attempts, 3);
    EXPECT_TRUE(fault.fail_permanently);
    ASSERT_TRUE(fault.delay_ms.has_value());
    EXPECT_EQ(*fault.delay_ms, 1500);
}

TEST(ReadFaultInjection, DefaultsWithoutKeys) {
    const FaultInjection fault =
        ReadFaultInjection(ParseObject(R"({"top_n":5,"language":"english","stem":false})"));
    EXPECT_EQ(fault.fail_attempts, 0);
    EXPECT_FALSE(fault.fail_permanently);
    EXPECT_FALSE(fault.delay_ms.has_value());
}

TEST(ReadFaultInjection, ReadsZeroDelay) {
    const FaultInjection fault = ReadFaultInjection(ParseObject(R"({"delay_ms":0})"));
    ASSERT_TRUE(fault.delay_ms.has_value());
    EXPECT_EQ(*fault.delay_ms, 0);
}

TEST(WithoutFaultInjection, RemovesOnlyFaultKeys) {
    const boost::json::object stored = ParseObject(
        R"({"top_n":5,"language":"english","stem":false,
            "fail_attempts":3,"fail_permanently":true,"delay_ms":1500})");
    EXPECT_EQ(WithoutFaultInjection(stored),
              ParseObject(R"({"top_n":5,"language":"english","stem":false})"));
    EXPECT_EQ(stored.size(), 6u) << "the input must not change";
}

TEST(WithoutFaultInjection, KeepsParamsWithoutFaultKeys) {
    const boost::json::object params = ParseObject(R"({"top_n":5,"language":"english"})");
    EXPECT_EQ(WithoutFaultInjection(params), params);
}

RunOutcome RunTextAnalyze(std::string_view params_json, std::string_view text) {
    return TextAnalyze().Run(NormalizeValid(params_json), text);
}

TEST(TextAnalyzeRun, AnalysesExample) {
    const RunOutcome outcome = RunTextAnalyze("{}", "The cat and the hat.");
    EXPECT_FALSE(outcome.error.has_value());
    ASSERT_TRUE(outcome.result_json.has_value());
    EXPECT_EQ(boost::json::parse(*outcome.result_json),
              boost::json::parse(R"({"word_count":5,"unique_words":4,
                  "top_words":[{"word":"cat","count":1},{"word":"hat","count":1}]})"));
}

TEST(TextAnalyzeRun, AppliesTopN) {
    const RunOutcome outcome = RunTextAnalyze(R"({"top_n":1})", "The cat and the hat.");
    ASSERT_TRUE(outcome.result_json.has_value());
    EXPECT_EQ(boost::json::parse(*outcome.result_json),
              boost::json::parse(R"({"word_count":5,"unique_words":4,
                  "top_words":[{"word":"cat","count":1}]})"));
}

TEST(TextAnalyzeRun, EmptyText) {
    const RunOutcome outcome = RunTextAnalyze("{}", "");
    ASSERT_TRUE(outcome.result_json.has_value());
    EXPECT_EQ(boost::json::parse(*outcome.result_json),
              boost::json::parse(R"({"word_count":0,"unique_words":0,"top_words":[]})"));
}

TEST(TextAnalyzeRun, RunsWithStoredFaultKeys) {
    // Stored params keep the fault-injection keys, and the worker removes
    // them with WithoutFaultInjection before it runs the task.
    const boost::json::object stored = ParseObject(
        R"({"top_n":5,"language":"english","stem":false,"fail_attempts":1,"delay_ms":0})");
    const RunOutcome outcome = TextAnalyze().Run(WithoutFaultInjection(stored), "cat cat hat");
    ASSERT_TRUE(outcome.result_json.has_value());
    EXPECT_EQ(boost::json::parse(*outcome.result_json),
              boost::json::parse(R"({"word_count":3,"unique_words":2,
                  "top_words":[{"word":"cat","count":2},{"word":"hat","count":1}]})"));
}

}  // namespace
}  // namespace conveyor
