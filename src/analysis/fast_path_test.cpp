// Differential tests of the ASCII fast path: Analyze must give exactly what
// AnalyzeWithIcuOnly, which segments every text with ICU, gives.

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "analysis/analyzer.hpp"
#include "analysis/analyzer_internal.hpp"

namespace conveyor::analysis {
namespace {

using std::string_literals::operator""s;

using Ranking = std::vector<std::pair<std::string, std::int64_t>>;

Ranking TopWords(const AnalysisResult& result) {
    Ranking ranking;
    for (const WordCount& entry : result.top_words) {
        ranking.emplace_back(entry.word, entry.count);
    }
    return ranking;
}

AnalysisOptions Options(int top_n = 100, std::string language = "english", bool stem = false) {
    AnalysisOptions options;
    options.top_n = top_n;
    options.language = std::move(language);
    options.stem = stem;
    return options;
}

// Writes the text with every byte outside printable ASCII as \xNN, so that a
// failure message shows exactly which input differed.
std::string Escape(std::string_view text) {
    static constexpr std::string_view kHex = "0123456789ABCDEF";
    std::string escaped;
    for (const char byte : text) {
        const auto value = static_cast<unsigned char>(byte);
        if (value >= 0x20 && value < 0x7F && value != '\\') {
            escaped.push_back(byte);
        } else {
            escaped += "\\x";
            escaped.push_back(kHex[value >> 4]);
            escaped.push_back(kHex[value & 0xF]);
        }
    }
    return escaped;
}

// Compares the two paths on one text and returns true when they agree. The
// first `report_limit` disagreements are reported field by field, so that a
// broken fast path does not flood the output.
class PathComparison {
  public:
    explicit PathComparison(int report_limit = 5) : report_limit_(report_limit) {}

    bool Check(const std::string& text, const AnalysisOptions& options = Options()) {
        ++checked_;
        const AnalysisResult fast = Analyze(text, options);
        const AnalysisResult reference = AnalyzeWithIcuOnly(text, options);
        const bool same = fast.word_count == reference.word_count &&
                          fast.unique_words == reference.unique_words &&
                          TopWords(fast) == TopWords(reference);
        if (!same && ++mismatches_ <= report_limit_) {
            const std::string context =
                "text \"" + Escape(text) + "\", language " + options.language + ", top_n " +
                std::to_string(options.top_n) + (options.stem ? ", stemmed" : "");
            EXPECT_EQ(fast.word_count, reference.word_count) << context;
            EXPECT_EQ(fast.unique_words, reference.unique_words) << context;
            EXPECT_EQ(TopWords(fast), TopWords(reference)) << context;
        }
        return same;
    }

    int mismatches() const { return mismatches_; }
    int checked() const { return checked_; }

  private:
    int report_limit_;
    int mismatches_ = 0;
    int checked_ = 0;
};

// One character of each class that ICU's word rules tell apart, ASCII and
// not: letters, a digit, ExtendNumLet, the mid characters, separators, and
// non-ASCII letters, marks and quotes that join with ASCII neighbours.
const std::vector<std::string> kNeighbours = {
    "",  "a",      "Z",      "1",      "_",      ".",      "'",      ",",      ":",      " ",
    "-", "\u00E9", "\u0301", "\u05D0", "\u2019", "\u200D", "\u00AD", "\u0661", "\u30AB", "\u5317",
};

TEST(FastPath, MatchesIcuOnEveryAsciiByte) {
    PathComparison comparison;
    for (int byte = 0; byte < 0x80; ++byte) {
        const std::string middle(1, static_cast<char>(byte));
        for (const std::string& left : kNeighbours) {
            for (const std::string& right : kNeighbours) {
                comparison.Check(left + middle + right);
                comparison.Check(left + middle + middle + right);
            }
        }
    }
    EXPECT_EQ(comparison.mismatches(), 0) << "of " << comparison.checked() << " texts";
}

// Calls check(text) for every string of 1 to max_length characters drawn
// from `alphabet`.
template <typename Check>
void ForEachString(const std::vector<std::string>& alphabet, std::size_t max_length,
                   Check&& check) {
    std::vector<std::size_t> digits;
    for (std::size_t length = 1; length <= max_length; ++length) {
        digits.assign(length, 0);
        while (true) {
            std::string text;
            for (const std::size_t digit : digits) {
                text += alphabet[digit];
            }
            check(text);

            std::size_t position = 0;
            while (position < length && ++digits[position] == alphabet.size()) {
                digits[position++] = 0;
            }
            if (position == length) {
                break;
            }
        }
    }
}

TEST(FastPath, MatchesIcuOnAllShortAsciiStrings) {
    const std::vector<std::string> alphabet = {"a", "B", "@", "1", "_", ".",  "'",
                                               ",", ";", ":", " ", "-", "\"", "\n"};
    PathComparison comparison;
    ForEachString(alphabet, 4, [&](const std::string& text) { comparison.Check(text); });
    EXPECT_EQ(comparison.mismatches(), 0) << "of " << comparison.checked() << " texts";
}

TEST(FastPath, MatchesIcuOnAllShortMixedStrings) {
    const std::vector<std::string> alphabet = {
        "a", "1", "_", ".", "'", ",", " ", "!", "\u00E9", "\u0301", "\u05D0", "\u2019", "\u200D",
    };
    PathComparison comparison;
    ForEachString(alphabet, 4, [&](const std::string& text) { comparison.Check(text); });
    EXPECT_EQ(comparison.mismatches(), 0) << "of " << comparison.checked() << " texts";
}

// ---------------------------------------------------------------------------
// Random texts

// Pieces of text that the generator strings together.
const std::vector<std::string> kAsciiWords = {
    "the",
    "of",
    "and",
    "a",
    "I",
    "don't",
    "it's",
    "you're",
    "o'neil",
    "rock'n'roll",
    "dogs'",
    "'tis",
    "don''t",
    "e.g.",
    "u.s.a",
    "snake_case",
    "__init__",
    "a_b",
    "x_1",
    "_1",
    "foo@bar.com",
    "@user",
    "e-mail",
    "state-of-the-art",
    "https://example.com/path?q=1",
    "C++",
    "#tag",
    "queue",
    "worker",
    "server",
    "abc123",
    "123abc",
    "v1.2.3",
    "3.14abc",
    "1e10",
    "aren't",
    "having",
    "connected",
    "connection",
    "und",
    "der",
    "le",
    "l'homme",
    "aujourd'hui",
    "ve",
};

const std::vector<std::string> kNumbers = {
    "0",   "42",   "2026",  "1,000", "1,000,000", "3.14", "3.14.15", "1'000",
    "1;2", "3,14", "12:30", "$5.00", "100%",      "1.",   ".5",      "1..2",
};

const std::vector<std::string> kAsciiMarks = {
    " ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", "\v",  "\f", "\0"s, "\x7F",
    ".", ",",  "'",  ":",  ";",    "_",    "-",  "@",   "\"", "!",   "?",
    "(", ")",  "/",  "#",  "*",    "&",    "``", "...", "--", "''",
};

const std::vector<std::string> kNonAscii = {
    // Letters, with case folding that ASCII does not have.
    "\u00E9",
    "\u00C9",
    "\u00DF",
    "\u1E9E",
    "\u0130",
    "\u03A3",
    "\u03C2",
    "\u0434",
    "\u05D0",
    "\u05E6\u05D4",
    "\u0645\u0631",
    "\uFB01",
    "\uFF21",
    "\u212B",
    "\u24B6",
    "\uFDFA",
    // Dictionary scripts, kana and Hangul.
    "\u5317\u4EAC",
    "\u6211",
    "\u3072",
    "\u30AB",
    "\uFF76",
    "\u0E20\u0E32\u0E29\u0E32",
    "\uD55C",
    // Marks, format characters, joiners and emoji.
    "\u0301",
    "e\u0301",
    "\u200D",
    "\u200B",
    "\u00AD",
    "\u2060",
    "\uFE0F",
    "\U0001F642",
    "\U0001F1E9\U0001F1EA",
    "\U0001F468\u200D\U0001F469",
    // Quotes, mid characters, digits and ExtendNumLet outside ASCII.
    "\u2019",
    "\u2018",
    "\uFF0E",
    "\u00B7",
    "\uFF1A",
    "\u2024",
    "\uFE52",
    "\u037E",
    "\u066C",
    "\uFF11",
    "\u0661",
    "\u00B2",
    "\u202F",
    "\u203F",
    "\uFF3F",
    // Spaces and line breaks.
    "\u00A0",
    "\u2003",
    "\u3000",
    "\u0085",
    "\u2028",
    // Invalid UTF-8: a stray byte, a truncated sequence, an encoded surrogate.
    "\xFF",
    "\xC3",
    "\xE2\x80",
    "\x80",
    "\xED\xA0\x80",
};

const std::vector<std::string> kLanguages = {"english", "german", "french", "turkish", "dutch"};

// A seeded generator of texts. std::mt19937_64 gives the same sequence on
// every platform, and Below avoids the distributions, which do not.
class TextGenerator {
  public:
    explicit TextGenerator(std::uint64_t seed) : random_(seed) {}

    std::size_t Below(std::size_t bound) { return static_cast<std::size_t>(random_() % bound); }

    bool Chance(std::size_t percent) { return Below(100) < percent; }

    template <typename T>
    const T& Pick(const std::vector<T>& items) {
        return items[Below(items.size())];
    }

    // Returns a text: usually short, sometimes kilobytes long, so that long
    // ASCII stretches between non-ASCII parts occur; pure ASCII, sparsely
    // mixed or densely mixed.
    std::string Text() {
        const std::size_t pieces = Chance(3) ? 100 + Below(700) : Below(40);
        const std::size_t non_ascii_percent = Pick(kNonAsciiPercents);
        std::string text;
        for (std::size_t i = 0; i < pieces; ++i) {
            text += Chance(non_ascii_percent) ? Pick(kNonAscii) : AsciiPiece();
            if (Chance(60)) {
                text += Chance(75) ? " " : Pick(kAsciiMarks);
            }
        }
        return text;
    }

    AnalysisOptions TextOptions() {
        const int top_n = Chance(80) ? 100 : static_cast<int>(1 + Below(10));
        return Options(top_n, Chance(80) ? "english" : Pick(kLanguages), Chance(20));
    }

  private:
    static inline const std::vector<std::size_t> kNonAsciiPercents = {0, 0, 2, 5, 5, 40};

    std::string AsciiPiece() {
        switch (Below(6)) {
            case 0:
                return Cased(Pick(kAsciiWords));
            case 1:
                return RandomLetters();
            case 2:
                return Pick(kNumbers);
            case 3:
                return Pick(kAsciiMarks);
            case 4:
                // Any ASCII byte, control characters included.
                return std::string(1, static_cast<char>(Below(0x80)));
            default:
                return Cased(Pick(kAsciiWords)) + Pick(kAsciiMarks) + Cased(Pick(kAsciiWords));
        }
    }

    std::string RandomLetters() {
        std::string letters(1 + Below(8), 'a');
        for (char& letter : letters) {
            letter = static_cast<char>((Chance(20) ? 'A' : 'a') + Below(26));
        }
        return letters;
    }

    // Returns the word in lower case, capitalised, upper case or mixed case.
    std::string Cased(std::string word) {
        const std::size_t style = Below(4);
        for (std::size_t i = 0; i < word.size(); ++i) {
            const bool upper = style == 2 || (style == 1 && i == 0) || (style == 3 && Chance(50));
            if (upper && word[i] >= 'a' && word[i] <= 'z') {
                word[i] = static_cast<char>(word[i] - 'a' + 'A');
            }
        }
        return word;
    }

    std::mt19937_64 random_;
};

// 100,000 texts take about 8 s of CPU time in a Debug build and 2 s in a
// Release build, measured on one core of a 2-core AMD EPYC virtual machine.
constexpr int kRandomTexts = 100'000;

TEST(FastPath, MatchesIcuOnRandomTexts) {
    TextGenerator generator(20260101);
    PathComparison comparison;
    for (int i = 0; i < kRandomTexts; ++i) {
        const std::string text = generator.Text();
        comparison.Check(text, generator.TextOptions());
    }
    EXPECT_EQ(comparison.checked(), kRandomTexts);
    EXPECT_EQ(comparison.mismatches(), 0) << "of " << comparison.checked() << " texts";
}

// ---------------------------------------------------------------------------
// How the text is split between the two segmenters

TEST(FastPath, MatchesIcuAroundLongAsciiStretches) {
    // Long enough that the stretches before and after the non-ASCII word are
    // counted by hand and only the words around it by ICU.
    std::string ascii;
    for (int i = 0; i < 100; ++i) {
        ascii += "Queue worker, don't stop. ";
    }
    PathComparison comparison;
    for (const std::string& word : kNonAscii) {
        comparison.Check(ascii + "caf" + word + "s " + ascii);
        comparison.Check(ascii + word + ascii);
        comparison.Check(ascii + "x" + word);
        comparison.Check(word + "x" + ascii);
    }
    EXPECT_EQ(comparison.mismatches(), 0) << "of " << comparison.checked() << " texts";
}

TEST(FastPath, MatchesIcuWhenNonAsciiIsDense) {
    std::string text;
    for (int i = 0; i < 300; ++i) {
        text += kNonAscii[static_cast<std::size_t>(i) % kNonAscii.size()];
        text += i % 3 == 0 ? " word " : "x";
    }
    PathComparison comparison;
    comparison.Check(text);
    EXPECT_EQ(comparison.mismatches(), 0);
}

TEST(FastPath, MatchesIcuOnLongWords) {
    const std::string long_word(100'000, 'a');
    PathComparison comparison;
    comparison.Check(long_word + " " + long_word);
    comparison.Check(std::string(100'000, 'A') + "\u00E9 " + long_word);
    comparison.Check(std::string(50'000, '_'));
    comparison.Check(std::string(50'000, '1') + "." + std::string(50'000, '2'));
    EXPECT_EQ(comparison.mismatches(), 0);
}

TEST(FastPath, MatchesIcuWithManyDistinctWords) {
    // Enough distinct words to grow the fast path's hash table many times.
    std::string text;
    for (int i = 0; i < 50'000; ++i) {
        text += "w" + std::to_string(i * 7919 % 50'000) + (i % 2 == 0 ? " " : ", ");
    }
    PathComparison comparison;
    comparison.Check(text);
    comparison.Check(text, Options(100, "english", true));
    EXPECT_EQ(comparison.mismatches(), 0);
}

}  // namespace
}  // namespace conveyor::analysis
