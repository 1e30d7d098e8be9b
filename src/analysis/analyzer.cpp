#include "analysis/analyzer.hpp"

#include <libstemmer.h>
#include <unicode/brkiter.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "analysis/analyzer_internal.hpp"
#include "analysis/ascii_words.hpp"
#include "analysis/stop_word_lists.hpp"
#include "analysis/word_counter.hpp"

namespace conveyor::analysis {
namespace {

// Hashes std::string keys and std::string_view probes alike, so lookups with
// a view of a reused buffer allocate nothing.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
        return std::hash<std::string_view>{}(text);
    }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;
using StringSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

void ThrowIfFailed(UErrorCode status, std::string_view operation) {
    if (U_FAILURE(status)) {
        throw std::runtime_error(std::string(operation) + " failed: " + u_errorName(status));
    }
}

// ---------------------------------------------------------------------------
// Normalisation

const icu::Normalizer2& NfkcCasefold() {
    static const icu::Normalizer2* const instance = [] {
        UErrorCode status = U_ZERO_ERROR;
        const icu::Normalizer2* normalizer = icu::Normalizer2::getNFKCCasefoldInstance(status);
        ThrowIfFailed(status, "loading ICU's NFKC_Casefold data");
        return normalizer;
    }();
    return *instance;
}

bool IsAscii(std::u16string_view text) {
    return std::all_of(text.begin(), text.end(), [](char16_t unit) { return unit < 0x80; });
}

void AppendUtf8(char32_t code_point, std::string& out) {
    if (code_point < 0x80) {
        out.push_back(static_cast<char>(code_point));
    } else if (code_point < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
        out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else if (code_point < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
        out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
        out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    }
}

// Converts UTF-16 to UTF-8, writing U+2019 as U+0027. A lone surrogate, which
// the callers never pass, would become U+FFFD.
void AppendUtf8ReplacingRightQuote(std::u16string_view text, std::string& out) {
    std::size_t i = 0;
    while (i < text.size()) {
        char32_t code_point = text[i++];
        if (code_point >= 0xD800 && code_point <= 0xDBFF && i < text.size() && text[i] >= 0xDC00 &&
            text[i] <= 0xDFFF) {
            code_point = 0x10000 + ((code_point - 0xD800) << 10) + (text[i++] - 0xDC00);
        } else if (code_point >= 0xD800 && code_point <= 0xDFFF) {
            code_point = 0xFFFD;
        }
        if (code_point == 0x2019) {
            code_point = '\'';
        }
        AppendUtf8(code_point, out);
    }
}

// Writes the normalised form of `word` to `out` as UTF-8: NFKC_Casefold, then
// every U+2019 replaced by U+0027. `scratch` is a buffer reused across calls.
void NormalizeWord(std::u16string_view word, icu::UnicodeString& scratch, std::string& out) {
    // On ASCII, NFKC_Casefold only lower-cases A to Z, and most words are ASCII.
    if (IsAscii(word)) {
        out.resize(word.size());
        for (std::size_t i = 0; i < word.size(); ++i) {
            const char16_t unit = word[i];
            const bool upper = unit >= 'A' && unit <= 'Z';
            out[i] = static_cast<char>(upper ? unit + ('a' - 'A') : unit);
        }
        return;
    }

    out.clear();
    // A read-only alias: the constructor copies nothing.
    const icu::UnicodeString source(false, word.data(), static_cast<int32_t>(word.size()));
    UErrorCode status = U_ZERO_ERROR;
    NfkcCasefold().normalize(source, scratch, status);
    ThrowIfFailed(status, "NFKC_Casefold normalisation");
    AppendUtf8ReplacingRightQuote(std::u16string_view(scratch.getBuffer(), scratch.length()), out);
}

// Returns true when the UTF-8 text, which must be valid, contains a code
// point of general category L.
bool ContainsLetter(std::string_view text) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
    std::size_t i = 0;
    while (i < text.size()) {
        UChar32 code_point = 0;
        U8_NEXT_UNSAFE(bytes, i, code_point);
        if ((U_GET_GC_MASK(code_point) & U_GC_L_MASK) != 0) {
            return true;
        }
    }
    return false;
}

// ---------------------------------------------------------------------------
// Languages and stop words

// Parses one embedded list: one entry a line, surrounding blanks ignored,
// each entry normalised like a word of the text.
StringSet ParseStopWords(std::string_view text) {
    StringSet stop_words;
    icu::UnicodeString scratch;
    std::string normalized;
    while (!text.empty()) {
        const std::size_t line_end = std::min(text.find('\n'), text.size());
        std::string_view entry = text.substr(0, line_end);
        text.remove_prefix(std::min(line_end + 1, text.size()));

        const std::size_t first = entry.find_first_not_of(" \t\r");
        if (first == std::string_view::npos) {
            continue;
        }
        entry = entry.substr(first, entry.find_last_not_of(" \t\r") - first + 1);

        const icu::UnicodeString utf16 = icu::UnicodeString::fromUTF8(
            icu::StringPiece(entry.data(), static_cast<int32_t>(entry.size())));
        NormalizeWord(std::u16string_view(utf16.getBuffer(), utf16.length()), scratch, normalized);
        stop_words.insert(normalized);
    }
    return stop_words;
}

bool HasStemmer(std::string_view language) {
    sb_stemmer* stemmer = sb_stemmer_new(std::string(language).c_str(), "UTF_8");
    sb_stemmer_delete(stemmer);
    return stemmer != nullptr;
}

// The supported languages in alphabetical order, each with its stop words.
// It is built once and never changed afterwards, so any thread may read it.
struct LanguageTable {
    std::vector<std::string_view> names;
    std::vector<StringSet> stop_words;
};

LanguageTable LoadLanguageTable() {
    LanguageTable table;
    const std::span<const std::string_view> names = StopWordListNames();
    const std::span<const std::string_view> texts = StopWordListTexts();
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (HasStemmer(names[i])) {
            table.names.push_back(names[i]);
            table.stop_words.push_back(ParseStopWords(texts[i]));
        }
    }
    return table;
}

const LanguageTable& Languages() {
    static const LanguageTable table = LoadLanguageTable();
    return table;
}

std::optional<std::size_t> FindLanguage(std::string_view name) {
    const std::vector<std::string_view>& names = Languages().names;
    const auto it = std::lower_bound(names.begin(), names.end(), name);
    if (it == names.end() || *it != name) {
        return std::nullopt;
    }
    return static_cast<std::size_t>(it - names.begin());
}

// ---------------------------------------------------------------------------
// Per-thread state

struct StemmerDeleter {
    void operator()(sb_stemmer* stemmer) const { sb_stemmer_delete(stemmer); }
};
using StemmerPtr = std::unique_ptr<sb_stemmer, StemmerDeleter>;

// Objects that are not thread-safe (the break iterator, the stemmers) or that
// are worth reusing (the buffers), one set per thread.
struct ThreadState {
    std::unique_ptr<icu::BreakIterator> word_breaker;
    icu::UnicodeString normalized_utf16;
    std::string normalized_utf8;
    std::vector<StemmerPtr> stemmers;  // indexed like LanguageTable::names
};

ThreadState& LocalState() {
    thread_local ThreadState state = [] {
        ThreadState created;
        UErrorCode status = U_ZERO_ERROR;
        created.word_breaker.reset(
            icu::BreakIterator::createWordInstance(icu::Locale::getRoot(), status));
        ThrowIfFailed(status, "creating ICU's word break iterator");
        created.stemmers.resize(Languages().names.size());
        return created;
    }();
    return state;
}

sb_stemmer& LocalStemmer(ThreadState& state, std::size_t language) {
    StemmerPtr& stemmer = state.stemmers.at(language);
    if (!stemmer) {
        const std::string name(Languages().names[language]);
        stemmer.reset(sb_stemmer_new(name.c_str(), "UTF_8"));
        if (!stemmer) {
            throw std::runtime_error("creating the Snowball stemmer for " + name + " failed");
        }
    }
    return *stemmer;
}

// ---------------------------------------------------------------------------
// Counting

struct WordTally {
    std::int64_t word_count = 0;
    StringMap<std::int64_t> counts;  // by normalised word
};

void CheckTextLength(std::string_view text) {
    // ICU string lengths are int32_t, and the limit leaves room for a terminator.
    if (text.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
        throw std::length_error("text of " + std::to_string(text.size()) +
                                " bytes is too long: the maximum is 2147483646 bytes");
    }
}

icu::UnicodeString ToUtf16(std::string_view text) {
    CheckTextLength(text);
    // fromUTF8 reads each invalid sequence as U+FFFD.
    icu::UnicodeString utf16 = icu::UnicodeString::fromUTF8(
        icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
    if (utf16.isBogus()) {
        throw std::bad_alloc();
    }
    return utf16;
}

bool IsWordStatus(std::int32_t rule_status) {
    return rule_status < UBRK_WORD_NONE || rule_status >= UBRK_WORD_NONE_LIMIT;
}

// Detaches the iterator from the text when the analysis ends, so that the
// thread's iterator never keeps a pointer to freed memory.
class TextBinding {
  public:
    TextBinding(icu::BreakIterator& breaker, const icu::UnicodeString& text) : breaker_(breaker) {
        breaker_.setText(text);
    }
    ~TextBinding() {
        static const icu::UnicodeString empty_text;
        breaker_.setText(empty_text);
    }
    TextBinding(const TextBinding&) = delete;
    TextBinding& operator=(const TextBinding&) = delete;

  private:
    icu::BreakIterator& breaker_;
};

// Calls on_word(word) for each word of `text`, in order, as ICU's break
// iterator finds them.
template <typename OnWord>
void ForEachIcuWord(const icu::UnicodeString& text, icu::BreakIterator& breaker, OnWord&& on_word) {
    const TextBinding binding(breaker, text);
    const std::u16string_view units(text.getBuffer(), text.length());

    std::int32_t start = breaker.first();
    for (std::int32_t end = breaker.next(); end != icu::BreakIterator::DONE;
         start = end, end = breaker.next()) {
        if (IsWordStatus(breaker.getRuleStatus())) {
            on_word(units.substr(start, end - start));
        }
    }
}

// Counts the words of the whole text with ICU alone: the reference for the
// fast path.
WordTally CountWords(const icu::UnicodeString& text, ThreadState& state) {
    WordTally tally;
    ForEachIcuWord(text, *state.word_breaker, [&](std::u16string_view word) {
        ++tally.word_count;
        NormalizeWord(word, state.normalized_utf16, state.normalized_utf8);

        const auto it = tally.counts.find(std::string_view(state.normalized_utf8));
        if (it != tally.counts.end()) {
            ++it->second;
        } else {
            tally.counts.emplace(state.normalized_utf8, 1);
        }
    });
    return tally;
}

// ---------------------------------------------------------------------------
// Counting with the ASCII fast path

// The fast path hands a part of the text back to the hand-written code only
// when at least this many ASCII bytes follow, because each part given to ICU
// costs a conversion and a setText of its own.
constexpr std::size_t kMinAsciiRun = 256;

struct FastTally {
    std::int64_t word_count = 0;
    WordCounter counts;  // by normalised word
    // The words that ICU found, as their UTF-16 code units' bytes, before
    // normalisation. Each distinct word is normalised once, at the end.
    WordCounter icu_words;
};

// Counts the words of `region`, a part of the text between safe splits, with
// ICU's break iterator. `utf16` is a buffer reused across the regions of one
// text.
void CountIcuRegion(std::string_view region, icu::UnicodeString& utf16, ThreadState& state,
                    FastTally& tally) {
    // Converts as UnicodeString::fromUTF8 does, each invalid sequence read as
    // U+FFFD, but into the reused buffer. A UTF-16 string has at most as many
    // units as the UTF-8 string has bytes.
    const auto capacity = static_cast<int32_t>(region.size() + 1);
    char16_t* buffer = utf16.getBuffer(capacity);
    if (buffer == nullptr) {
        throw std::bad_alloc();
    }
    int32_t length = 0;
    UErrorCode status = U_ZERO_ERROR;
    u_strFromUTF8WithSub(buffer, utf16.getCapacity(), &length, region.data(),
                         static_cast<int32_t>(region.size()), 0xFFFD, nullptr, &status);
    utf16.releaseBuffer(U_SUCCESS(status) ? length : 0);
    ThrowIfFailed(status, "converting UTF-8 to UTF-16");

    ForEachIcuWord(utf16, *state.word_breaker, [&](std::u16string_view word) {
        ++tally.word_count;
        tally.icu_words.Add(std::string_view(reinterpret_cast<const char*>(word.data()),
                                             word.size() * sizeof(char16_t)));
    });
}

// Normalises each distinct word that ICU found and adds its count to the
// normalised counts.
void NormalizeIcuWords(FastTally& tally, ThreadState& state) {
    std::u16string word;
    tally.icu_words.ForEach([&](std::string_view bytes, std::int64_t count) {
        word.resize(bytes.size() / sizeof(char16_t));
        std::memcpy(word.data(), bytes.data(), bytes.size());
        NormalizeWord(word, state.normalized_utf16, state.normalized_utf8);
        tally.counts.Add(state.normalized_utf8, count);
    });
}

// Returns where the part of the text that ICU segments ends, at or after
// `from`: the first safe split followed by kMinAsciiRun ASCII bytes or by
// only ASCII bytes, or the end of the text.
std::size_t FindIcuRegionEnd(std::string_view text, std::size_t from) {
    std::size_t split = NextSafeSplit(text, from);
    while (split < text.size()) {
        const std::size_t non_ascii = FindNonAscii(text, split);
        if (non_ascii == text.size() || non_ascii - split >= kMinAsciiRun) {
            return split;
        }
        split = NextSafeSplit(text, non_ascii);
    }
    return text.size();
}

// Counts the words of the text like CountWords. Stretches of ASCII between
// safe splits go to the hand-written segmenter, and the parts around
// non-ASCII bytes to ICU. Safe splits are word boundaries for ICU that no
// rule looks across, so each part is segmented as it is inside the whole
// text.
FastTally CountWordsFast(std::string_view text, ThreadState& state) {
    FastTally tally;
    icu::UnicodeString region_utf16;
    std::size_t position = 0;  // always 0 or a safe split
    while (position < text.size()) {
        const std::size_t non_ascii = FindNonAscii(text, position);
        if (non_ascii == text.size()) {
            tally.word_count += CountAsciiWords(text.substr(position), tally.counts);
            break;
        }

        const std::size_t icu_start = LastSafeSplit(text, position, non_ascii);
        tally.word_count +=
            CountAsciiWords(text.substr(position, icu_start - position), tally.counts);

        const std::size_t icu_end = FindIcuRegionEnd(text, non_ascii);
        CountIcuRegion(text.substr(icu_start, icu_end - icu_start), region_utf16, state, tally);
        position = icu_end;
    }
    NormalizeIcuWords(tally, state);
    return tally;
}

// ---------------------------------------------------------------------------
// Ranking and stemming

struct RankedWord {
    std::string_view word;
    std::int64_t count = 0;
};

// The ranking order: count descending, then the word in ascending code-point
// order, which for UTF-8 is the byte order that std::string_view compares in
// (char_traits<char> compares as unsigned char).
bool RanksBefore(const RankedWord& a, const RankedWord& b) {
    if (a.count != b.count) {
        return a.count > b.count;
    }
    return a.word < b.word;
}

bool IsCandidate(std::string_view word, const StringSet& stop_words) {
    return ContainsLetter(word) && !stop_words.contains(word);
}

std::vector<RankedWord> SelectCandidates(const StringMap<std::int64_t>& counts,
                                         const StringSet& stop_words) {
    std::vector<RankedWord> candidates;
    for (const auto& [word, count] : counts) {
        if (IsCandidate(word, stop_words)) {
            candidates.push_back(RankedWord{word, count});
        }
    }
    return candidates;
}

std::vector<RankedWord> SelectCandidates(const WordCounter& counts, const StringSet& stop_words) {
    std::vector<RankedWord> candidates;
    counts.ForEach([&](std::string_view word, std::int64_t count) {
        if (IsCandidate(word, stop_words)) {
            candidates.push_back(RankedWord{word, count});
        }
    });
    return candidates;
}

// Returns the stem in the stemmer's own buffer, valid until its next call.
std::string_view Stem(sb_stemmer& stemmer, std::string_view word) {
    if (word.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw std::length_error("a word is too long for the Snowball stemmer");
    }
    const sb_symbol* stem = sb_stemmer_stem(
        &stemmer, reinterpret_cast<const sb_symbol*>(word.data()), static_cast<int>(word.size()));
    if (stem == nullptr) {
        throw std::bad_alloc();
    }
    return {reinterpret_cast<const char*>(stem),
            static_cast<std::size_t>(sb_stemmer_length(&stemmer))};
}

// Merges words with the same stem. Each group is shown as its first member in
// ranking order (the most frequent, ties by code point) with the sum of the
// members' counts.
std::vector<RankedWord> GroupByStem(const std::vector<RankedWord>& words, sb_stemmer& stemmer) {
    struct Group {
        RankedWord shown;
        std::int64_t total = 0;
    };
    StringMap<Group> groups;
    for (const RankedWord& word : words) {
        const std::string_view stem = Stem(stemmer, word.word);
        auto it = groups.find(stem);
        if (it == groups.end()) {
            it = groups.emplace(std::string(stem), Group{word, 0}).first;
        }
        Group& group = it->second;
        group.total += word.count;
        if (RanksBefore(word, group.shown)) {
            group.shown = word;
        }
    }

    std::vector<RankedWord> grouped;
    grouped.reserve(groups.size());
    for (const auto& [stem, group] : groups) {
        grouped.push_back(RankedWord{group.shown.word, group.total});
    }
    return grouped;
}

std::vector<WordCount> TakeTop(std::vector<RankedWord>& candidates, int top_n) {
    const std::size_t count = std::min(static_cast<std::size_t>(top_n), candidates.size());
    const auto middle = candidates.begin() + static_cast<std::ptrdiff_t>(count);
    std::partial_sort(candidates.begin(), middle, candidates.end(), RanksBefore);

    std::vector<WordCount> top;
    top.reserve(count);
    for (auto it = candidates.begin(); it != middle; ++it) {
        top.push_back(WordCount{std::string(it->word), it->count});
    }
    return top;
}

// Builds the result from the counts: stems the candidates when asked and
// takes the first top_n. The candidates view words owned by the caller.
AnalysisResult BuildResult(std::int64_t word_count, std::size_t unique_words,
                           std::vector<RankedWord> candidates, const AnalysisOptions& options,
                           std::size_t language, ThreadState& state) {
    if (options.stem) {
        candidates = GroupByStem(candidates, LocalStemmer(state, language));
    }

    AnalysisResult result;
    result.word_count = word_count;
    result.unique_words = static_cast<std::int64_t>(unique_words);
    result.top_words = TakeTop(candidates, options.top_n);
    return result;
}

enum class Segmentation {
    kAsciiFastPath,  // ASCII stretches by hand, the rest by ICU
    kIcuOnly,        // the whole text by ICU
};

AnalysisResult AnalyzeWith(std::string_view text, const AnalysisOptions& options,
                           Segmentation segmentation) {
    const std::optional<std::size_t> language = FindLanguage(options.language);
    if (!language) {
        throw std::invalid_argument("unsupported language \"" + options.language +
                                    "\": check it with IsSupportedLanguage first");
    }
    if (options.top_n < 1) {
        throw std::invalid_argument("top_n must be at least 1, got " +
                                    std::to_string(options.top_n));
    }
    CheckTextLength(text);

    ThreadState& state = LocalState();
    const StringSet& stop_words = Languages().stop_words[*language];
    if (segmentation == Segmentation::kIcuOnly) {
        const WordTally tally = CountWords(ToUtf16(text), state);
        return BuildResult(tally.word_count, tally.counts.size(),
                           SelectCandidates(tally.counts, stop_words), options, *language, state);
    }
    const FastTally tally = CountWordsFast(text, state);
    return BuildResult(tally.word_count, tally.counts.size(),
                       SelectCandidates(tally.counts, stop_words), options, *language, state);
}

}  // namespace

std::span<const std::string_view> SupportedLanguages() {
    return Languages().names;
}

bool IsSupportedLanguage(std::string_view language) {
    return FindLanguage(language).has_value();
}

AnalysisResult Analyze(std::string_view text, const AnalysisOptions& options) {
    return AnalyzeWith(text, options, Segmentation::kAsciiFastPath);
}

AnalysisResult AnalyzeWithIcuOnly(std::string_view text, const AnalysisOptions& options) {
    return AnalyzeWith(text, options, Segmentation::kIcuOnly);
}

std::string ToJson(const AnalysisResult& result) {
    boost::json::array top_words;
    top_words.reserve(result.top_words.size());
    for (const WordCount& entry : result.top_words) {
        top_words.push_back(boost::json::object{{"word", entry.word}, {"count", entry.count}});
    }
    const boost::json::object object{{"word_count", result.word_count},
                                     {"unique_words", result.unique_words},
                                     {"top_words", std::move(top_words)}};
    return boost::json::serialize(object);
}

}  // namespace conveyor::analysis
