#include "analysis/ascii_words.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "analysis/word_counter.hpp"

namespace conveyor::analysis {
namespace {

using Counts = std::vector<std::pair<std::string, std::int64_t>>;

// Returns the words that CountAsciiWords finds, in order of first occurrence.
Counts Words(std::string_view text, std::int64_t* word_count = nullptr) {
    WordCounter counter;
    const std::int64_t count = CountAsciiWords(text, counter);
    if (word_count != nullptr) {
        *word_count = count;
    }
    Counts words;
    counter.ForEach([&](std::string_view word, std::int64_t occurrences) {
        words.emplace_back(word, occurrences);
    });
    return words;
}

TEST(CountAsciiWords, LowerCasesLetters) {
    EXPECT_EQ(Words("The THE the"), (Counts{{"the", 3}}));
}

TEST(CountAsciiWords, ReturnsNumberOfWords) {
    std::int64_t word_count = 0;
    Words("one, two two. 3", &word_count);
    EXPECT_EQ(word_count, 4);
}

TEST(CountAsciiWords, KeepsApostropheBetweenLetters) {
    EXPECT_EQ(Words("don't dogs' 'tis don''t"),
              (Counts{{"don't", 1}, {"dogs", 1}, {"tis", 1}, {"don", 1}, {"t", 1}}));
}

TEST(CountAsciiWords, KeepsSeparatorsBetweenDigits) {
    EXPECT_EQ(Words("1,000 3.14 1;2 1'2 1:2"),
              (Counts{{"1,000", 1}, {"3.14", 1}, {"1;2", 1}, {"1'2", 1}, {"1", 1}, {"2", 1}}));
}

TEST(CountAsciiWords, SplitsCommaBetweenLetters) {
    EXPECT_EQ(Words("a,b"), (Counts{{"a", 1}, {"b", 1}}));
}

TEST(CountAsciiWords, SplitsColonBetweenLetters) {
    EXPECT_EQ(Words("a:b"), (Counts{{"a", 1}, {"b", 1}}));
}

TEST(CountAsciiWords, SplitsMidCharacterBetweenLetterAndDigit) {
    EXPECT_EQ(Words("a.1 1.a"), (Counts{{"a", 2}, {"1", 2}}));
}

TEST(CountAsciiWords, JoinsLettersDigitsAndUnderscores) {
    EXPECT_EQ(Words("abc123 x_1 _a v1.2.3"),
              (Counts{{"abc123", 1}, {"x_1", 1}, {"_a", 1}, {"v1.2.3", 1}}));
}

TEST(CountAsciiWords, CountsUnderscoreRunsButNotLoneUnderscore) {
    EXPECT_EQ(Words("_ __ ___"), (Counts{{"__", 1}, {"___", 1}}));
}

TEST(CountAsciiWords, TreatsAtSignAsLetter) {
    EXPECT_EQ(Words("foo@bar.com @"), (Counts{{"foo@bar.com", 1}, {"@", 1}}));
}

TEST(CountAsciiWords, SplitsAtHyphen) {
    EXPECT_EQ(Words("e-mail"), (Counts{{"e", 1}, {"mail", 1}}));
}

TEST(CountAsciiWords, LeavesMidCharacterAtEndOutside) {
    EXPECT_EQ(Words("a."), (Counts{{"a", 1}}));
}

TEST(FindNonAscii, FindsFirstHighByte) {
    const std::string text = std::string(20, 'a') + "\xC3\xA9" + std::string(20, 'b') + "\xFF";
    EXPECT_EQ(FindNonAscii(text, 0), 20U);
    EXPECT_EQ(FindNonAscii(text, 21), 21U);
    EXPECT_EQ(FindNonAscii(text, 22), 42U);
}

TEST(FindNonAscii, ReturnsSizeForAsciiText) {
    const std::string text(37, 'a');
    EXPECT_EQ(FindNonAscii(text, 0), text.size());
    EXPECT_EQ(FindNonAscii(text, text.size()), text.size());
}

TEST(IsSafeSplit, NeedsSeparatorBeforeAndWordPartAfter) {
    const std::string_view text = "a b.c!_ \xC3\xA9x";
    EXPECT_FALSE(IsSafeSplit(text, 0));   // the start of the text is not a split
    EXPECT_TRUE(IsSafeSplit(text, 2));    // " b"
    EXPECT_FALSE(IsSafeSplit(text, 4));   // ".c": the full stop may join letters
    EXPECT_TRUE(IsSafeSplit(text, 6));    // "!_"
    EXPECT_FALSE(IsSafeSplit(text, 7));   // "_ ": the space is not a word part
    EXPECT_FALSE(IsSafeSplit(text, 10));  // "\xA9x": the byte before is not ASCII
}

TEST(IsSafeSplit, TreatsColonAsSeparator) {
    // The colon is a separator for ICU's root rules, so "a:b" splits before b.
    EXPECT_TRUE(IsSafeSplit("a:b", 2));
}

TEST(LastSafeSplit, ReturnsFromWhenThereIsNone) {
    EXPECT_EQ(LastSafeSplit("abc.def", 0, 6), 0U);
}

TEST(LastSafeSplit, ReturnsLastSplit) {
    EXPECT_EQ(LastSafeSplit("a b c\xC3\xA9", 0, 5), 4U);
}

TEST(NextSafeSplit, ReturnsFirstSplitAfterFrom) {
    EXPECT_EQ(NextSafeSplit("a b c", 0), 2U);
    EXPECT_EQ(NextSafeSplit("a b c", 2), 4U);
    EXPECT_EQ(NextSafeSplit("a b c", 4), 5U);
}

}  // namespace
}  // namespace conveyor::analysis
