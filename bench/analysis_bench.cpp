// Throughput of analysis::Analyze on about 1 MiB of generated text, in bytes
// per second of one thread, so per core. Each text is also measured with
// AnalyzeWithIcuOnly, which segments the whole text with ICU and so shows
// what the ASCII fast path gains. The texts are the same on every run: fixed
// word lists and a fixed random seed.

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "analysis/analyzer.hpp"
#include "analysis/analyzer_internal.hpp"

namespace {

constexpr std::size_t kTextBytes = 1 << 20;

// Common English words, short function words first: the generator picks
// words near the start of a list more often, as prose uses them more often.
constexpr auto kEnglishWords = std::to_array<std::string_view>({
    "the",      "of",       "and",      "to",       "a",        "in",        "is",       "it",
    "that",     "was",      "for",      "on",       "with",     "as",        "he",       "they",
    "at",       "be",       "this",     "from",     "have",     "or",        "by",       "one",
    "had",      "not",      "but",      "what",     "all",      "were",      "when",     "we",
    "there",    "can",      "an",       "your",     "which",    "their",     "said",     "if",
    "do",       "will",     "each",     "about",    "how",      "up",        "out",      "many",
    "then",     "them",     "queue",    "worker",   "task",     "server",    "request",  "database",
    "message",  "client",   "thread",   "result",   "network",  "latency",   "storage",  "process",
    "failure",  "retry",    "timeout",  "lease",    "commit",   "schedule",  "handler",  "payload",
    "response", "status",   "record",   "engineer", "morning",  "river",     "mountain", "garden",
    "history",  "language", "question", "answer",   "children", "village",   "weather",  "journey",
    "kitchen",  "library",  "window",   "quickly",  "slowly",   "carefully", "running",  "written",
    "don't",    "it's",
});

// Words of many scripts: accents, Cyrillic, Greek, CJK (split by ICU's
// dictionaries), kana, Thai, Arabic, Hangul, emoji, numbers and addresses.
constexpr auto kMixedWords = std::to_array<std::string_view>({
    "Stra\u00DFe",
    "na\u00EFve",
    "cafe\u0301",
    "\u041C\u043E\u0441\u043A\u0432\u0430",
    "\u043A\u043D\u0438\u0433\u0438",
    "\u03BB\u03CC\u03B3\u03BF\u03C2",
    "\u6211\u7231\u5317\u4EAC\u5929\u5B89\u95E8",
    "\u65E5\u672C\u8A9E\u306E\u30C6\u30AD\u30B9\u30C8\u3067\u3059",
    "\u3072\u3089\u304C\u306A",
    "\u0E20\u0E32\u0E29\u0E32\u0E44\u0E17\u0E22\u0E07\u0E48\u0E32\u0E22",
    "\u0645\u0631\u062D\u0628\u0627",
    "\uD55C\uAD6D\uC5B4",
    "\U0001F642",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467",
    "2026",
    "3.14",
    "e-mail",
    "foo@example.com",
    "don\u2019t",
    "\uFB01ne",
    "\uFF21\uFF22\uFF23",
    "queue",
    "worker",
    "the",
    "and",
    "task",
    "\u0928\u0947\u092A\u093E\u0932\u0915\u094B",
    "h\u00E4user",
    "\u00E9t\u00E9",
    "snake_case",
    "https://example.com/path",
    "\u05E6\u05D4\"\u05DC",
});

// A xorshift generator: the same sequence on every platform.
class Random {
  public:
    std::uint32_t Next() {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 17;
        state_ ^= state_ << 5;
        return state_;
    }
    // Returns a value in [0, bound), skewed towards 0 like word frequencies.
    std::size_t Skewed(std::size_t bound) {
        const std::uint64_t a = Next() % bound;
        const std::uint64_t b = Next() % bound;
        return static_cast<std::size_t>(a * b / bound);
    }

  private:
    std::uint32_t state_ = 0x2545F491;
};

// Builds sentences of 6 to 20 words with capitals, commas and full stops,
// stopping at the first sentence end after `bytes`.
std::string GenerateProse(std::span<const std::string_view> words, std::size_t bytes) {
    Random random;
    std::string text;
    text.reserve(bytes + 256);
    while (text.size() < bytes) {
        const std::size_t length = 6 + random.Next() % 15;
        for (std::size_t i = 0; i < length; ++i) {
            std::string word(words[random.Skewed(words.size())]);
            if (i == 0 && word[0] >= 'a' && word[0] <= 'z') {
                word[0] = static_cast<char>(word[0] - 'a' + 'A');
            }
            text += word;
            text += (i + 1 == length) ? ". " : (random.Next() % 9 == 0 ? ", " : " ");
        }
        if (random.Next() % 6 == 0) {
            text += "\n\n";
        }
    }
    return text;
}

// Returns the text with U+2019 for every straight apostrophe, as typeset
// prose has it, and with "’s" inserted before every 100th space, so that
// about one word in 100 touches a character that is not ASCII.
std::string Typeset(std::string_view text) {
    std::string typeset;
    typeset.reserve(text.size() + text.size() / 64);
    std::size_t spaces = 0;
    for (const char byte : text) {
        if (byte == '\'') {
            typeset += "\u2019";
            continue;
        }
        if (byte == ' ' && ++spaces % 100 == 0) {
            typeset += "\u2019s";
        }
        typeset.push_back(byte);
    }
    return typeset;
}

using AnalyzeFunction = conveyor::analysis::AnalysisResult (*)(
    std::string_view, const conveyor::analysis::AnalysisOptions&);

void RunAnalyze(benchmark::State& state, const std::string& text,
                const conveyor::analysis::AnalysisOptions& options,
                AnalyzeFunction analyze = conveyor::analysis::Analyze) {
    for (auto _ : state) {
        conveyor::analysis::AnalysisResult result = analyze(text, options);
        benchmark::DoNotOptimize(result);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(text.size()));
}

const std::string& EnglishProse() {
    static const std::string text = GenerateProse(kEnglishWords, kTextBytes);
    return text;
}

// The English prose as typeset text: the fast path hands the words around
// each U+2019 to ICU.
const std::string& TypesetEnglishProse() {
    static const std::string text = Typeset(EnglishProse());
    return text;
}

const std::string& MixedScriptText() {
    static const std::string text = GenerateProse(kMixedWords, kTextBytes);
    return text;
}

void AnalyzeEnglishProse(benchmark::State& state) {
    RunAnalyze(state, EnglishProse(), {});
}

void AnalyzeEnglishProseIcuOnly(benchmark::State& state) {
    RunAnalyze(state, EnglishProse(), {}, conveyor::analysis::AnalyzeWithIcuOnly);
}

void AnalyzeTypesetEnglishProse(benchmark::State& state) {
    RunAnalyze(state, TypesetEnglishProse(), {});
}

void AnalyzeTypesetEnglishProseIcuOnly(benchmark::State& state) {
    RunAnalyze(state, TypesetEnglishProse(), {}, conveyor::analysis::AnalyzeWithIcuOnly);
}

void AnalyzeEnglishProseStemmed(benchmark::State& state) {
    conveyor::analysis::AnalysisOptions options;
    options.stem = true;
    RunAnalyze(state, EnglishProse(), options);
}

void AnalyzeMixedScriptText(benchmark::State& state) {
    RunAnalyze(state, MixedScriptText(), {});
}

void AnalyzeMixedScriptTextIcuOnly(benchmark::State& state) {
    RunAnalyze(state, MixedScriptText(), {}, conveyor::analysis::AnalyzeWithIcuOnly);
}

BENCHMARK(AnalyzeEnglishProse)->Unit(benchmark::kMillisecond);
BENCHMARK(AnalyzeEnglishProseIcuOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(AnalyzeEnglishProseStemmed)->Unit(benchmark::kMillisecond);
BENCHMARK(AnalyzeTypesetEnglishProse)->Unit(benchmark::kMillisecond);
BENCHMARK(AnalyzeTypesetEnglishProseIcuOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(AnalyzeMixedScriptText)->Unit(benchmark::kMillisecond);
BENCHMARK(AnalyzeMixedScriptTextIcuOnly)->Unit(benchmark::kMillisecond);

}  // namespace
