#include "analysis/analyzer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "analysis/stop_word_lists.hpp"

namespace conveyor::analysis {
namespace {

using std::string_literals::operator""s;

using Ranking = std::vector<std::pair<std::string, std::int64_t>>;

AnalysisOptions Options(int top_n = 5, std::string language = "english", bool stem = false) {
    AnalysisOptions options;
    options.top_n = top_n;
    options.language = std::move(language);
    options.stem = stem;
    return options;
}

Ranking TopWords(const AnalysisResult& result) {
    Ranking ranking;
    for (const WordCount& entry : result.top_words) {
        ranking.emplace_back(entry.word, entry.count);
    }
    return ranking;
}

// One input with its expected result, worked out by hand from the rules:
// ICU 72's root word segmentation, NFKC_Casefold, U+2019 to U+0027, the
// stop-word list of the language, letters required for ranking.
struct Case {
    std::string name;
    std::string text;
    std::int64_t word_count = 0;
    std::int64_t unique_words = 0;
    Ranking top_words;
    AnalysisOptions options = Options();
};

void PrintTo(const Case& test_case, std::ostream* out) {
    *out << test_case.name;
}

class AnalyzerCase : public ::testing::TestWithParam<Case> {};

TEST_P(AnalyzerCase, MatchesExpectedResult) {
    const Case& test_case = GetParam();
    const AnalysisResult result = Analyze(test_case.text, test_case.options);
    EXPECT_EQ(result.word_count, test_case.word_count);
    EXPECT_EQ(result.unique_words, test_case.unique_words);
    EXPECT_EQ(TopWords(result), test_case.top_words);
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
    return info.param.name;
}

// The examples of the text.analyze contract, top_n 5.
const std::vector<Case> kContractExamples = {
    {"TheCatAndTheHat", "The cat and the hat.", 5, 4, {{"cat", 1}, {"hat", 1}}},
    {"DontStop", "Don\u2019t stop, DON'T stop!", 4, 2, {{"stop", 2}}},
    {"Strasse", "Stra\u00DFe STRASSE stra\u00DFe", 3, 1, {{"strasse", 3}}},
    {"NumbersAreNotRanked", "In 2026, 3.14 is pi.", 5, 5, {{"pi", 1}}},
    {"StateOfTheArt", "state-of-the-art art", 5, 4, {{"art", 2}, {"state", 1}}},
    {"EmojiAndPunctuation", "\U0001F642 !!! ...", 0, 0, {}},
};

INSTANTIATE_TEST_SUITE_P(Contract, AnalyzerCase, ::testing::ValuesIn(kContractExamples), CaseName);

const std::string kLongWord(100'000, 'a');

// Inputs chosen to exercise segmentation, normalisation and ranking. Where
// the segmentation is surprising, the comment gives what ICU 72 does.
const std::vector<Case> kTrickyCases = {
    // Apostrophes. "it's" is an English stop word.
    {"CurlyApostropheInsideWord", "It\u2019s Bob\u2019s book", 3, 3, {{"bob's", 1}, {"book", 1}}},
    {"CurlyAndStraightApostropheMerge",
     "rock\u2019n\u2019roll Rock'n'Roll",
     2,
     1,
     {{"rock'n'roll", 2}}},
    {"TrailingApostropheIsNotPartOfWord", "dogs\u2019 dogs' dogs", 3, 1, {{"dogs", 3}}},
    {"LeadingApostropheIsNotPartOfWord", "\u2019tis 'tis", 2, 1, {{"tis", 2}}},
    // Two apostrophes in a row end the word: "don" and "t" are stop words.
    {"DoubleApostropheSplitsWord", "don''t", 2, 2, {}},
    {"CurlyContractionIsStopWord", "I'm you\u2019re YOU'RE", 3, 2, {}},
    {"ApostropheInName", "O'Neil o\u2019neil O\u2019NEIL", 3, 1, {{"o'neil", 3}}},

    // Case folding.
    {"CaseFoldingMergesWords", "Apple APPLE apple aPPle", 4, 1, {{"apple", 4}}},
    {"StopWordsMatchAnyCase", "THE The the tHe", 4, 1, {}},
    {"SharpSFoldsToSs", "Fu\u00DF FUSS fuss", 3, 1, {{"fuss", 3}}},
    {"CapitalSharpSFoldsToSs", "STRA\u1E9EE stra\u00DFe", 2, 1, {{"strasse", 2}}},
    {"GreekFinalSigma", "\u03A3\u0391\u03A3 \u03C3\u03B1\u03C2", 2, 1, {{"\u03C3\u03B1\u03C3", 2}}},
    {"GreekTonos",
     "\u0386\u03BB\u03C6\u03B1 \u0386\u039B\u03A6\u0391",
     2,
     1,
     {{"\u03AC\u03BB\u03C6\u03B1", 2}}},
    {"CyrillicAndLatinStayApart",
     "\u041C\u043E\u0441\u043A\u0432\u0430 "
     "\u043C\u043E\u0441\u043A\u0432\u0430 MOSCOW",
     3,
     2,
     {{"\u043C\u043E\u0441\u043A\u0432\u0430", 2}, {"moscow", 1}}},
    // Capital I with dot folds to "i" plus U+0307, a different word from "istanbul".
    {"TurkishDottedCapitalI",
     "\u0130stanbul istanbul",
     2,
     2,
     {{"istanbul", 1}, {"i\u0307stanbul", 1}}},
    {"DzDigraphTitleCase", "\u01C5emo \u01C6emo \u01C4EMO", 3, 1, {{"d\u017Eemo", 3}}},

    // Canonical and compatibility equivalence.
    {"AccentNfcAndNfdAreOneWord",
     "caf\u00E9 cafe\u0301 CAF\u00C9 CAFE\u0301",
     4,
     1,
     {{"caf\u00E9", 4}}},
    {"AccentedAndPlainStayApart", "caf\u00E9 cafe", 2, 2, {{"cafe", 1}, {"caf\u00E9", 1}}},
    {"AngstromSignIsARing", "\u212B \u00C5 A\u030A \u00E5", 4, 1, {{"\u00E5", 4}}},
    {"LigaturesExpand", "\uFB01ne fine \uFB00", 3, 2, {{"fine", 2}, {"ff", 1}}},
    {"FullWidthLatin", "\uFF21\uFF22\uFF23 abc \uFF21bc", 3, 1, {{"abc", 3}}},
    {"FullWidthDigitsAreNumbers", "\uFF11\uFF12\uFF13 123", 2, 1, {}},
    {"HalfWidthKatakana",
     "\uFF76\uFF80\uFF76\uFF85 \u30AB\u30BF\u30AB\u30CA",
     2,
     1,
     {{"\u30AB\u30BF\u30AB\u30CA", 2}}},
    {"MathematicalBoldLetters", "\U0001D400\U0001D401\U0001D402 abc", 2, 1, {{"abc", 2}}},
    // Circled letters are words, and NFKC turns them into the stop word "a".
    {"CircledLetterBecomesStopWord", "\u24B6 \u24D0 a", 3, 1, {}},
    {"RomanNumeralIsLetters", "\u216B xii XII", 3, 1, {{"xii", 3}}},
    // U+FDFA expands to four Arabic words joined by spaces, still one word.
    {"ArabicLigatureExpandsWithSpaces",
     "\uFDFA",
     1,
     1,
     {{"\u0635\u0644\u0649 \u0627\u0644\u0644\u0647 \u0639\u0644\u064A\u0647 "
       "\u0648\u0633\u0644\u0645",
       1}}},
    // The superscript two is not part of the word.
    {"SuperscriptIsNotPartOfWord", "x\u00B2 x2", 2, 2, {{"x", 1}, {"x2", 1}}},

    // Scripts without spaces, split by ICU's dictionaries.
    {"ChineseWords",
     "\u6211\u7231\u5317\u4EAC\u5929\u5B89\u95E8",
     4,
     4,
     {{"\u5317\u4EAC", 1}, {"\u5929\u5B89\u95E8", 1}, {"\u6211", 1}, {"\u7231", 1}}},
    {"ChineseRepeatedWord", "\u5317\u4EAC\u5317\u4EAC", 2, 1, {{"\u5317\u4EAC", 2}}},
    {"JapaneseMixedScripts",
     "\u65E5\u672C\u8A9E\u306E\u30C6\u30AD\u30B9\u30C8\u3067\u3059",
     4,
     4,
     {{"\u3067\u3059", 1},
      {"\u306E", 1},
      {"\u30C6\u30AD\u30B9\u30C8", 1},
      {"\u65E5\u672C\u8A9E", 1}}},
    // ICU's dictionary has no entry for this run, so each kana is a word.
    {"HiraganaSingleCharacters",
     "\u3072\u3089\u304C\u306A",
     4,
     4,
     {{"\u304C", 1}, {"\u306A", 1}, {"\u3072", 1}, {"\u3089", 1}}},
    {"ThaiWords",
     "\u0E20\u0E32\u0E29\u0E32\u0E44\u0E17\u0E22\u0E07\u0E48\u0E32\u0E22"
     "\u0E19\u0E34\u0E14\u0E40\u0E14\u0E35\u0E22\u0E27",
     5,
     5,
     {{"\u0E07\u0E48\u0E32\u0E22", 1},
      {"\u0E19\u0E34\u0E14", 1},
      {"\u0E20\u0E32\u0E29\u0E32", 1},
      {"\u0E40\u0E14\u0E35\u0E22\u0E27", 1},
      {"\u0E44\u0E17\u0E22", 1}}},
    {"KoreanWords",
     "\uD55C\uAD6D\uC5B4 \uD14D\uC2A4\uD2B8 \uD55C\uAD6D\uC5B4",
     3,
     2,
     {{"\uD55C\uAD6D\uC5B4", 2}, {"\uD14D\uC2A4\uD2B8", 1}}},
    {"HebrewGershayimWord", "\u05E6\u05D4\"\u05DC", 1, 1, {{"\u05E6\u05D4\"\u05DC", 1}}},

    // Emoji and invisible characters.
    {"EmojiOnly", "\U0001F642\U0001F600\U0001F44D", 0, 0, {}},
    {"EmojiZwjSequence",
     "\U0001F468\u200D\U0001F469\u200D\U0001F467 family \U0001F468\u200D\U0001F469",
     1,
     1,
     {{"family", 1}}},
    {"EmojiTouchingWords", "word\U0001F600 \U0001F600word", 2, 1, {{"word", 2}}},
    {"FlagTouchingWord", "\U0001F1E9\U0001F1EAberlin", 1, 1, {{"berlin", 1}}},
    // NFKC_Casefold removes the joiner, so the two halves become one word.
    {"ZeroWidthJoinerInsideWord", "hello\u200Dworld", 1, 1, {{"helloworld", 1}}},
    {"ZeroWidthSpaceSplitsWords", "hello\u200Bworld", 2, 2, {{"hello", 1}, {"world", 1}}},
    {"SoftHyphenIsRemoved", "co\u00ADop coop", 2, 1, {{"coop", 2}}},
    {"NoBreakSpaceSeparates", "big\u00A0cat\u3000cat", 3, 2, {{"cat", 2}, {"big", 1}}},

    // Numbers.
    {"NumbersWithSeparators", "1,000,000 3.14.15 42 3,14", 4, 4, {}},
    {"ColonSplitsNumbers", "12:30 12", 3, 2, {}},
    {"ArabicIndicDigits", "\u0663\u0664 \u0661\u0662", 2, 2, {}},
    {"ExponentHasALetter", "1e10 2026", 2, 2, {{"1e10", 1}}},
    {"LettersAndDigitsMixed",
     "abc123 123abc v1.2.3 3.14abc",
     4,
     4,
     {{"123abc", 1}, {"3.14abc", 1}, {"abc123", 1}, {"v1.2.3", 1}}},
    {"CurrencyAndPercent", "$5.00 \u20AC5,00 100%", 3, 3, {}},

    // URLs, e-mail addresses and symbols. ICU 72's word rules treat '@' like a
    // letter, which keeps e-mail addresses whole, but '@' is not of category L.
    {"UrlParts",
     "https://example.com/path?q=1",
     5,
     5,
     {{"example.com", 1}, {"https", 1}, {"path", 1}, {"q", 1}}},
    {"EmailAddressIsOneWord",
     "mail foo@bar.com or Foo@Bar.COM",
     4,
     3,
     {{"foo@bar.com", 2}, {"mail", 1}}},
    {"AtSignAloneIsUnrankedWord", "x @ x", 3, 2, {{"x", 2}}},
    {"MentionKeepsAtSign", "@user @User", 2, 1, {{"@user", 2}}},
    {"HashtagLosesHash", "#tag #Tag", 2, 1, {{"tag", 2}}},
    {"AbbreviationsWithDots", "e.g. U.S.A. u.s.a", 3, 2, {{"u.s.a", 2}, {"e.g", 1}}},
    {"PlusSignsSplit", "C++ c", 2, 1, {{"c", 2}}},

    // Hyphens and underscores.
    {"HyphenSplitsWords",
     "e-mail co\u2010operate",
     4,
     4,
     {{"co", 1}, {"e", 1}, {"mail", 1}, {"operate", 1}}},
    {"UnderscoreJoinsWords", "snake_case Snake_Case", 2, 1, {{"snake_case", 2}}},
    // A lone underscore is not a word, but a run of them is.
    {"UnderscoresWithoutLetters", "_ __ ___", 2, 2, {}},
    {"UnderscoreWithDigit", "x_1 _1", 2, 2, {{"x_1", 1}}},

    // Ranking and ties.
    {"TiesInCodePointOrder",
     "pear apple fig apple fig",
     5,
     3,
     {{"apple", 2}, {"fig", 2}, {"pear", 1}}},
    // U+FA0E comes before U+20000 in code points, after it in UTF-16 units.
    {"TiesCompareCodePointsNotUtf16",
     "\U00020000 \uFA0E",
     2,
     2,
     {{"\uFA0E", 1}, {"\U00020000", 1}}},
    {"UpperCaseDoesNotChangeOrder", "Zebra apple", 2, 2, {{"apple", 1}, {"zebra", 1}}},
    {"TopNOne", "pear apple fig apple fig", 5, 3, {{"apple", 2}}, Options(1)},
    {"TopNCutsInsideTie", "pear fig apple", 3, 3, {{"apple", 1}, {"fig", 1}}, Options(2)},
    {"TopNAboveCandidates", "pear fig", 2, 2, {{"fig", 1}, {"pear", 1}}, Options(100)},
    {"SixCandidatesTopFive",
     "g f e c b b h",
     7,
     6,
     {{"b", 2}, {"c", 1}, {"e", 1}, {"f", 1}, {"g", 1}}},

    // Empty and degenerate input.
    {"EmptyText", "", 0, 0, {}},
    {"WhitespaceOnly", " \t\n\r\u00A0\u2003\u3000", 0, 0, {}},
    {"PunctuationOnly", "!!! ... --- ()", 0, 0, {}},
    {"OnlyStopWords", "the and of", 3, 3, {}},
    {"OnlyNumbers", "1 2 3 2", 4, 3, {}},
    {"NulSeparatesWords", "cat\0cat\0"s, 2, 1, {{"cat", 2}}},
    {"NulOnly", "\0\0\0"s, 0, 0, {}},

    // Invalid UTF-8: each bad sequence reads as U+FFFD, which is not a word.
    {"InvalidByteSeparatesWords",
     "ab\xFF"
     "cd",
     2,
     2,
     {{"ab", 1}, {"cd", 1}}},
    {"InvalidBytesOnly", "\xC0\x80\xFF\xFE", 0, 0, {}},
    {"TruncatedSequenceAtEnd", "caf\xC3", 1, 1, {{"caf", 1}}},
    {"EncodedSurrogateIsInvalid", "x\xED\xA0\x80x", 2, 1, {{"x", 2}}},

    // Long input.
    {"VeryLongWord", kLongWord + " " + kLongWord, 2, 1, {{kLongWord, 2}}},
    {"VeryLongUpperCaseWord", std::string(100'000, 'A') + " " + kLongWord, 2, 1, {{kLongWord, 2}}},
};

INSTANTIATE_TEST_SUITE_P(Tricky, AnalyzerCase, ::testing::ValuesIn(kTrickyCases), CaseName);

// ---------------------------------------------------------------------------
// Languages

// A text in one language: a stop word, then two inflected forms of one word
// (the first twice) that share a Snowball stem.
struct LanguageSample {
    std::string language;
    std::string stop_word;
    std::string frequent_form;
    std::string other_form;
};

void PrintTo(const LanguageSample& sample, std::ostream* out) {
    *out << sample.language;
}

const std::vector<LanguageSample> kLanguageSamples = {
    {"danish", "og", "huset", "husene"},
    {"dutch", "de", "lopen", "loop"},
    {"english", "the", "connected", "connection"},
    {"finnish", "ja", "talossa", "talot"},
    {"french", "le", "continuer", "continu\u00E9"},
    {"german", "und", "h\u00E4user", "haus"},
    {"hungarian", "az", "h\u00E1zak", "h\u00E1zban"},
    {"italian", "il", "parlare", "parlato"},
    {"nepali", "\u0905\u092C", "\u0928\u0947\u092A\u093E\u0932\u0915\u094B",
     "\u0928\u0947\u092A\u093E\u0932\u0932\u093E\u0908"},
    {"norwegian", "og", "bilen", "biler"},
    {"portuguese", "de", "falando", "falar"},
    {"russian", "\u0438", "\u043A\u043D\u0438\u0433\u0438", "\u043A\u043D\u0438\u0433\u0443"},
    {"spanish", "el", "hablando", "hablar"},
    {"swedish", "och", "bilar", "bilen"},
    {"turkish", "ve", "kitaplar", "kitaplarda"},
};

class LanguageTest : public ::testing::TestWithParam<LanguageSample> {
  protected:
    std::string SampleText() const {
        const LanguageSample& sample = GetParam();
        return sample.stop_word + " " + sample.frequent_form + " " + sample.other_form + " " +
               sample.frequent_form;
    }
};

TEST_P(LanguageTest, IsSupported) {
    EXPECT_TRUE(IsSupportedLanguage(GetParam().language));
}

TEST_P(LanguageTest, LeavesStopWordOutOfRanking) {
    const LanguageSample& sample = GetParam();
    const AnalysisResult result = Analyze(SampleText(), Options(5, sample.language));
    EXPECT_EQ(result.word_count, 4);
    EXPECT_EQ(result.unique_words, 3);
    const Ranking expected = {{sample.frequent_form, 2}, {sample.other_form, 1}};
    EXPECT_EQ(TopWords(result), expected);
}

TEST_P(LanguageTest, StemmingGroupsInflectedForms) {
    const LanguageSample& sample = GetParam();
    const AnalysisResult result = Analyze(SampleText(), Options(5, sample.language, true));
    EXPECT_EQ(result.word_count, 4);
    EXPECT_EQ(result.unique_words, 3);
    const Ranking expected = {{sample.frequent_form, 3}};
    EXPECT_EQ(TopWords(result), expected);
}

TEST_P(LanguageTest, RanksOtherLanguagesStopWord) {
    // "the" is a stop word only in English, "og" only in Danish and Norwegian.
    const LanguageSample& sample = GetParam();
    const std::string word = sample.language == "english" ? "og" : "the";
    const AnalysisResult result = Analyze(word, Options(5, sample.language));
    const Ranking expected = {{word, 1}};
    EXPECT_EQ(TopWords(result), expected);
}

INSTANTIATE_TEST_SUITE_P(Languages, LanguageTest, ::testing::ValuesIn(kLanguageSamples),
                         [](const ::testing::TestParamInfo<LanguageSample>& info) {
                             return info.param.language;
                         });

TEST(SupportedLanguages, ListsFifteenInAlphabeticalOrder) {
    const std::vector<std::string_view> expected = {"danish",  "dutch",     "english",    "finnish",
                                                    "french",  "german",    "hungarian",  "italian",
                                                    "nepali",  "norwegian", "portuguese", "russian",
                                                    "spanish", "swedish",   "turkish"};
    const std::span<const std::string_view> languages = SupportedLanguages();
    EXPECT_EQ(std::vector<std::string_view>(languages.begin(), languages.end()), expected);
}

TEST(SupportedLanguages, RejectsOtherNames) {
    EXPECT_FALSE(IsSupportedLanguage(""));
    EXPECT_FALSE(IsSupportedLanguage("English"));
    EXPECT_FALSE(IsSupportedLanguage("porter"));
    EXPECT_FALSE(IsSupportedLanguage("english "));
}

TEST(StopWords, EveryListEntryIsAStopWord) {
    // Each entry is one ICU word, so a list analysed as text ranks nothing.
    const std::span<const std::string_view> names = StopWordListNames();
    const std::span<const std::string_view> texts = StopWordListTexts();
    ASSERT_EQ(names.size(), texts.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto lines = std::count(texts[i].begin(), texts[i].end(), '\n');
        const AnalysisResult result = Analyze(texts[i], Options(100, std::string(names[i])));
        EXPECT_EQ(result.word_count, lines) << names[i];
        EXPECT_EQ(TopWords(result), Ranking{}) << names[i];
    }
}

TEST(StopWords, EntriesAreNormalised) {
    // The German list spells "daß", which folds to "dass".
    const AnalysisResult german = Analyze("DASS da\u00DF Dass haus", Options(5, "german"));
    EXPECT_EQ(TopWords(german), (Ranking{{"haus", 1}}));

    // The English list has "aren't" with a straight apostrophe.
    const AnalysisResult english = Analyze("AREN\u2019T aren't cats", Options());
    EXPECT_EQ(TopWords(english), (Ranking{{"cats", 1}}));
}

TEST(StopWords, ListsAreEmbedded) {
    const std::span<const std::string_view> names = StopWordListNames();
    ASSERT_EQ(names.size(), 15U);
    for (const std::string_view text : StopWordListTexts()) {
        EXPECT_FALSE(text.empty());
    }
}

// ---------------------------------------------------------------------------
// Stemming

TEST(Stemming, GroupCountIsSumOfMembers) {
    const AnalysisResult result =
        Analyze("connect connected connecting connection connects", Options(5, "english", true));
    EXPECT_EQ(TopWords(result), (Ranking{{"connect", 5}}));
}

TEST(Stemming, ShowsMostFrequentMember) {
    const AnalysisResult result =
        Analyze("connect connection connection", Options(5, "english", true));
    EXPECT_EQ(TopWords(result), (Ranking{{"connection", 3}}));
}

TEST(Stemming, BreaksMemberTieByCodePoint) {
    const AnalysisResult result =
        Analyze("connection connected connection connected connect", Options(5, "english", true));
    EXPECT_EQ(TopWords(result), (Ranking{{"connected", 5}}));
}

TEST(Stemming, BreaksGroupTieByShownWord) {
    // The stems are "sky" and "skim", but the groups tie and are ordered by
    // their shown words, "skies" before "skim".
    const AnalysisResult result = Analyze("skim skies", Options(5, "english", true));
    EXPECT_EQ(TopWords(result), (Ranking{{"skies", 1}, {"skim", 1}}));
}

TEST(Stemming, RanksGroupsByTotal) {
    const AnalysisResult result =
        Analyze("cat cats run running runs dog dog dog", Options(5, "english", true));
    EXPECT_EQ(TopWords(result), (Ranking{{"dog", 3}, {"run", 3}, {"cat", 2}}));
}

TEST(Stemming, LeavesCountsUnchanged) {
    const std::string text = "The cats, the cat and 3 dogs.";
    const AnalysisResult plain = Analyze(text, Options(5, "english", false));
    const AnalysisResult stemmed = Analyze(text, Options(5, "english", true));
    EXPECT_EQ(plain.word_count, 7);
    EXPECT_EQ(stemmed.word_count, plain.word_count);
    EXPECT_EQ(plain.unique_words, 6);
    EXPECT_EQ(stemmed.unique_words, plain.unique_words);
    EXPECT_EQ(TopWords(stemmed), (Ranking{{"cat", 2}, {"dogs", 1}}));
}

TEST(Stemming, RemovesStopWordsBeforeGrouping) {
    // "having" is a stop word, so "haves" stays alone although both stem to "have".
    const AnalysisResult result = Analyze("having haves having", Options(5, "english", true));
    EXPECT_EQ(TopWords(result), (Ranking{{"haves", 1}}));
}

TEST(Stemming, IgnoresNumbers) {
    const AnalysisResult result = Analyze("2026 2026 cats", Options(5, "english", true));
    EXPECT_EQ(TopWords(result), (Ranking{{"cats", 1}}));
}

TEST(Stemming, TopNAppliesToGroups) {
    const AnalysisResult result =
        Analyze("cat cats run running runs dog dog dog", Options(2, "english", true));
    EXPECT_EQ(TopWords(result), (Ranking{{"dog", 3}, {"run", 3}}));
}

// ---------------------------------------------------------------------------
// Preconditions, JSON and threads

TEST(Analyze, RejectsUnsupportedLanguage) {
    EXPECT_THROW(Analyze("text", Options(5, "klingon")), std::invalid_argument);
}

TEST(Analyze, RejectsTopNBelowOne) {
    EXPECT_THROW(Analyze("text", Options(0)), std::invalid_argument);
}

TEST(Analyze, CountsLargeText) {
    std::string text;
    for (int i = 0; i < 10'000; ++i) {
        text += "Queue worker queue, 42. ";
    }
    const AnalysisResult result = Analyze(text, Options());
    EXPECT_EQ(result.word_count, 40'000);
    EXPECT_EQ(result.unique_words, 3);
    EXPECT_EQ(TopWords(result), (Ranking{{"queue", 20'000}, {"worker", 10'000}}));
}

TEST(Analyze, GivesSameResultsOnManyThreads) {
    const std::vector<std::pair<std::string, AnalysisOptions>> inputs = {
        {"connect connected connecting dogs dog", Options(5, "english", true)},
        {"Die H\u00E4user und das Haus", Options(5, "german", true)},
        {"\u6211\u7231\u5317\u4EAC\u5929\u5B89\u95E8", Options(3)},
        {"\u043A\u043D\u0438\u0433\u0438 \u0438 \u043A\u043D\u0438\u0433\u0443",
         Options(5, "russian", true)},
    };
    std::vector<Ranking> expected;
    expected.reserve(inputs.size());
    for (const auto& [text, options] : inputs) {
        expected.push_back(TopWords(Analyze(text, options)));
    }

    constexpr int kThreads = 4;
    constexpr int kRounds = 50;
    std::vector<int> mismatches(kThreads, 0);
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int round = 0; round < kRounds; ++round) {
                const std::size_t i = static_cast<std::size_t>(t + round) % inputs.size();
                if (TopWords(Analyze(inputs[i].first, inputs[i].second)) != expected[i]) {
                    ++mismatches[static_cast<std::size_t>(t)];
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(mismatches[static_cast<std::size_t>(t)], 0) << "thread " << t;
    }
}

TEST(ToJson, WritesMembersInContractOrder) {
    AnalysisResult result;
    result.word_count = 3;
    result.unique_words = 2;
    result.top_words = {{"cat", 2}, {"caf\u00E9", 1}};
    EXPECT_EQ(ToJson(result),
              "{\"word_count\":3,\"unique_words\":2,\"top_words\":"
              "[{\"word\":\"cat\",\"count\":2},{\"word\":\"caf\u00E9\",\"count\":1}]}");
}

TEST(ToJson, WritesEmptyResult) {
    EXPECT_EQ(ToJson(Analyze("", Options())),
              "{\"word_count\":0,\"unique_words\":0,\"top_words\":[]}");
}

TEST(ToJson, EscapesQuotesAndControlCharacters) {
    AnalysisResult result;
    result.top_words = {{"a\"b\\c\n\x01", 1}};
    EXPECT_EQ(ToJson(result),
              "{\"word_count\":0,\"unique_words\":0,\"top_words\":"
              "[{\"word\":\"a\\\"b\\\\c\\n\\u0001\",\"count\":1}]}");
}

TEST(ToJson, EscapesQuoteInsideHebrewWord) {
    const AnalysisResult result = Analyze("\u05E6\u05D4\"\u05DC", Options());
    EXPECT_EQ(ToJson(result),
              "{\"word_count\":1,\"unique_words\":1,\"top_words\":"
              "[{\"word\":\"\u05E6\u05D4\\\"\u05DC\",\"count\":1}]}");
}

}  // namespace
}  // namespace conveyor::analysis
