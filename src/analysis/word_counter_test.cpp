#include "analysis/word_counter.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace conveyor::analysis {
namespace {

using Counts = std::vector<std::pair<std::string, std::int64_t>>;

Counts Contents(const WordCounter& counter) {
    Counts contents;
    counter.ForEach(
        [&](std::string_view word, std::int64_t count) { contents.emplace_back(word, count); });
    return contents;
}

TEST(WordCounter, StartsEmpty) {
    const WordCounter counter;
    EXPECT_EQ(counter.size(), 0U);
    EXPECT_EQ(Contents(counter), Counts{});
}

TEST(WordCounter, CountsRepeatsInFirstOccurrenceOrder) {
    WordCounter counter;
    for (const std::string_view word : {"pear", "fig", "pear", "apple", "fig", "pear"}) {
        counter.Add(word);
    }
    EXPECT_EQ(counter.size(), 3U);
    EXPECT_EQ(Contents(counter), (Counts{{"pear", 3}, {"fig", 2}, {"apple", 1}}));
}

TEST(WordCounter, TellsApartWordsThatDifferInOneByte) {
    // Words of every length from 1 to 40 bytes, each also with its last and
    // its first byte changed, cover every way the hash reads a word's tail.
    WordCounter counter;
    Counts expected;
    for (std::size_t length = 1; length <= 40; ++length) {
        const std::string word(length, 'a');
        std::string last_changed = word;
        last_changed.back() = 'b';
        std::string first_changed = word;
        first_changed.front() = 'c';
        for (const std::string& variant : {word, last_changed, first_changed}) {
            counter.Add(variant);
            expected.emplace_back(variant, 1);
        }
    }
    EXPECT_EQ(Contents(counter), expected);
}

TEST(WordCounter, KeepsCountsWhileGrowing) {
    WordCounter counter;
    constexpr int kWords = 20'000;
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < kWords; ++i) {
            counter.Add("word" + std::to_string(i));
        }
    }
    ASSERT_EQ(counter.size(), static_cast<std::size_t>(kWords));
    int wrong_counts = 0;
    counter.ForEach([&](std::string_view, std::int64_t count) {
        if (count != 3) {
            ++wrong_counts;
        }
    });
    EXPECT_EQ(wrong_counts, 0);
}

TEST(WordCounter, CountsEmptyWordAndBytesAboveAscii) {
    WordCounter counter;
    counter.Add("");
    counter.Add("caf\xC3\xA9");
    counter.Add("");
    counter.Add(std::string_view("a\0b", 3));
    EXPECT_EQ(Contents(counter),
              (Counts{{"", 2}, {"caf\xC3\xA9", 1}, {std::string("a\0b", 3), 1}}));
}

TEST(HashWord, GivesEqualWordsEqualHashes) {
    const std::string copy = "connection";
    EXPECT_EQ(HashWord("connection"), HashWord(copy));
}

}  // namespace
}  // namespace conveyor::analysis
