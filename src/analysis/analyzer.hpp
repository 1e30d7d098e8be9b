#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor::analysis {

struct WordCount {
    std::string word;  // normalised, UTF-8
    std::int64_t count = 0;
};

struct AnalysisResult {
    std::int64_t word_count = 0;
    std::int64_t unique_words = 0;
    std::vector<WordCount> top_words;
};

struct AnalysisOptions {
    int top_n = 5;
    std::string language = "english";
    bool stem = false;
};

// Returns the languages that have a stop-word list and a Snowball stemmer,
// in alphabetical order.
std::span<const std::string_view> SupportedLanguages();

bool IsSupportedLanguage(std::string_view language);

// Analyses UTF-8 text: words by ICU's word break rules, normalised with
// NFKC_Casefold, stop words of `options.language` left out of the ranking.
// Invalid UTF-8 sequences are read as U+FFFD. Thread-safe; the cost is
// linear in the text's size. Precondition: IsSupportedLanguage(language)
// and 1 <= top_n.
AnalysisResult Analyze(std::string_view text, const AnalysisOptions& options);

// Serializes as {"word_count":..,"unique_words":..,"top_words":[{"word":..,"count":..}]}.
std::string ToJson(const AnalysisResult& result);

}  // namespace conveyor::analysis
