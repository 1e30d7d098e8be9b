// The text.analyze task type: word count and most frequent words.

#include <boost/json.hpp>

#include "analysis/analyzer.hpp"
#include "tasks/task_type.hpp"

namespace conveyor {
namespace {

constexpr int kDefaultTopN = 5;
constexpr int kMaxTopN = 100;

class TextAnalyze final : public TaskType {
public:
    std::string_view Name() const override { return "text.analyze"; }

    std::optional<boost::json::object> NormalizeParams(
        const boost::json::object& params, std::vector<FieldIssue>& issues) const override {
        const std::size_t issues_before = issues.size();
        boost::json::object effective;
        effective["top_n"] = kDefaultTopN;
        effective["language"] = "english";
        effective["stem"] = false;

        for (const auto& [key, value] : params) {
            const std::string field = "params." + std::string(key);
            if (key == "top_n") {
                const bool integral = value.is_int64() || value.is_uint64();
                const auto number = value.is_int64() ? value.get_int64() : 0;
                if (!integral || number < 1 || number > kMaxTopN) {
                    issues.push_back({field, "must be an integer from 1 to 100"});
                } else {
                    effective["top_n"] = number;
                }
            } else if (key == "language") {
                if (!value.is_string() || !analysis::IsSupportedLanguage(value.get_string())) {
                    std::string names;
                    for (const std::string_view language : analysis::SupportedLanguages()) {
                        names += names.empty() ? "" : ", ";
                        names += language;
                    }
                    issues.push_back({field, "must be one of: " + names});
                } else {
                    effective["language"] = value.get_string();
                }
            } else if (key == "stem") {
                if (!value.is_bool()) {
                    issues.push_back({field, "must be true or false"});
                } else {
                    effective["stem"] = value.get_bool();
                }
            } else {
                issues.push_back({field, "is not a parameter of text.analyze"});
            }
        }
        if (issues.size() != issues_before) {
            return std::nullopt;
        }
        return effective;
    }

    RunOutcome Run(const boost::json::object& params, std::string_view text) const override {
        analysis::AnalysisOptions options;
        options.top_n = static_cast<int>(params.at("top_n").to_number<std::int64_t>());
        options.language = std::string(params.at("language").get_string());
        options.stem = params.at("stem").get_bool();
        RunOutcome outcome;
        outcome.result_json = analysis::ToJson(analysis::Analyze(text, options));
        return outcome;
    }
};

}  // namespace

const TaskType& TextAnalyzeTaskType() {
    static const TextAnalyze instance;
    return instance;
}

}  // namespace conveyor
