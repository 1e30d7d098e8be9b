// Fuzzes the text analyzer. The first input byte picks the options (language,
// stemming, top_n); the rest is the text. The ASCII fast path must agree
// with the ICU-only path, and the counts must add up.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "analysis/analyzer.hpp"
#include "analysis/analyzer_internal.hpp"
#include "fuzz_check.hpp"

namespace {

using conveyor::analysis::AnalysisOptions;
using conveyor::analysis::AnalysisResult;
using conveyor::fuzz::Require;

AnalysisOptions OptionsFrom(std::uint8_t selector) {
    const auto languages = conveyor::analysis::SupportedLanguages();
    AnalysisOptions options;
    options.language = std::string(languages[(selector >> 1) % languages.size()]);
    options.stem = (selector & 1) != 0;
    // Small top_n values make ties at the cut-off common.
    options.top_n = selector >= 0xF0 ? 100 : 1 + (selector >> 5);
    return options;
}

void CheckCounts(const AnalysisResult& result, const AnalysisOptions& options) {
    Require(result.word_count >= 0, "word_count is not negative");
    Require(result.unique_words <= result.word_count, "unique_words is at most word_count");
    Require(result.top_words.size() <= static_cast<std::size_t>(options.top_n),
            "top_words has at most top_n entries");
    Require(static_cast<std::int64_t>(result.top_words.size()) <= result.unique_words,
            "top_words has at most unique_words entries");
    std::int64_t ranked_total = 0;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < result.top_words.size(); ++i) {
        const auto& entry = result.top_words[i];
        Require(entry.count >= 1, "a ranked word occurs at least once");
        Require(!entry.word.empty(), "a ranked word is not empty");
        Require(seen.insert(entry.word).second, "a word is ranked once");
        ranked_total += entry.count;
        if (i > 0) {
            const auto& previous = result.top_words[i - 1];
            Require(previous.count >= entry.count, "the ranking is by count, highest first");
            // std::string compares bytes, and byte order of UTF-8 is
            // code-point order.
            Require(previous.count > entry.count || previous.word < entry.word,
                    "ties are in code-point order");
        }
    }
    Require(ranked_total <= result.word_count, "ranked counts add up to at most word_count");
}

void CheckSame(const AnalysisResult& fast, const AnalysisResult& icu) {
    Require(fast.word_count == icu.word_count, "both paths give the same word_count");
    Require(fast.unique_words == icu.unique_words, "both paths give the same unique_words");
    Require(fast.top_words.size() == icu.top_words.size(),
            "both paths rank the same number of words");
    for (std::size_t i = 0; i < fast.top_words.size(); ++i) {
        Require(fast.top_words[i].word == icu.top_words[i].word, "both paths rank the same words");
        Require(fast.top_words[i].count == icu.top_words[i].count,
                "both paths give the same counts");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const AnalysisOptions options = OptionsFrom(data[0]);
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    const AnalysisResult fast = conveyor::analysis::Analyze(text, options);
    CheckCounts(fast, options);
    CheckSame(fast, conveyor::analysis::AnalyzeWithIcuOnly(text, options));
    return 0;
}
