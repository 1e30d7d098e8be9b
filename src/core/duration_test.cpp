#include "core/duration.hpp"

#include <gtest/gtest.h>

#include <string>

namespace conveyor {
namespace {

TEST(ParseDuration, AcceptsEachUnit) {
    EXPECT_EQ(ParseDuration("250ms"), Millis{250});
    EXPECT_EQ(ParseDuration("5s"), Millis{5000});
    EXPECT_EQ(ParseDuration("2m"), Millis{120'000});
    EXPECT_EQ(ParseDuration("1h"), Millis{3'600'000});
}

TEST(ParseDuration, AcceptsZero) {
    EXPECT_EQ(ParseDuration("0"), Millis{0});
    EXPECT_EQ(ParseDuration("0s"), Millis{0});
    EXPECT_EQ(ParseDuration("0ms"), Millis{0});
}

TEST(ParseDuration, AcceptsLeadingZeros) {
    EXPECT_EQ(ParseDuration("05s"), Millis{5000});
}

TEST(ParseDuration, RejectsMalformed) {
    for (const std::string text :
         {"", "5", "-1s", "+1s", "1.5s", "5 s", " 5s", "5s ", "5S", "5MS", "1d", "s", "ms", "5sec",
          "5ss", "5s5", "0x10s", "00", "five s"}) {
        EXPECT_FALSE(ParseDuration(text).has_value()) << '"' << text << '"';
    }
}

TEST(ParseDuration, RejectsOverflow) {
    for (const std::string text : {"9223372036854775808ms", "9223372036854775807s",
                                   "99999999999999999999999h", "3000000000000h"}) {
        EXPECT_FALSE(ParseDuration(text).has_value()) << text;
    }
}

TEST(ParseDuration, AcceptsLargeValueThatFits) {
    EXPECT_EQ(ParseDuration("1000000h"), Millis{3'600'000'000'000});
}

TEST(FormatDuration, UsesLargestExactUnit) {
    EXPECT_EQ(FormatDuration(Millis{0}), "0");
    EXPECT_EQ(FormatDuration(Millis{1500}), "1500ms");
    EXPECT_EQ(FormatDuration(Millis{5000}), "5s");
    EXPECT_EQ(FormatDuration(Millis{120'000}), "2m");
    EXPECT_EQ(FormatDuration(Millis{90'000}), "90s");
    EXPECT_EQ(FormatDuration(Millis{7'200'000}), "2h");
}

TEST(FormatDuration, RoundTripsThroughParse) {
    for (const Millis duration :
         {Millis{0}, Millis{1}, Millis{999}, Millis{1000}, Millis{1001}, Millis{61'000},
          Millis{3'600'000}, Millis{5'400'000}, Millis{86'400'000}}) {
        EXPECT_EQ(ParseDuration(FormatDuration(duration)), duration) << duration.count();
    }
}

TEST(ParseDurationRange, AcceptsInterval) {
    const auto range = ParseDurationRange("5s..10s");
    ASSERT_TRUE(range.has_value());
    EXPECT_EQ(range->min, Millis{5000});
    EXPECT_EQ(range->max, Millis{10'000});
}

TEST(ParseDurationRange, AcceptsMixedUnits) {
    const auto range = ParseDurationRange("500ms..1m");
    ASSERT_TRUE(range.has_value());
    EXPECT_EQ(range->min, Millis{500});
    EXPECT_EQ(range->max, Millis{60'000});
}

TEST(ParseDurationRange, SingleValueIsBothEnds) {
    const auto range = ParseDurationRange("200ms");
    ASSERT_TRUE(range.has_value());
    EXPECT_EQ(range->min, Millis{200});
    EXPECT_EQ(range->max, Millis{200});
}

TEST(ParseDurationRange, AcceptsZero) {
    const auto range = ParseDurationRange("0");
    ASSERT_TRUE(range.has_value());
    EXPECT_EQ(range->min, Millis{0});
    EXPECT_EQ(range->max, Millis{0});
}

TEST(ParseDurationRange, AcceptsEqualEnds) {
    const auto range = ParseDurationRange("5s..5000ms");
    ASSERT_TRUE(range.has_value());
    EXPECT_EQ(range->min, Millis{5000});
    EXPECT_EQ(range->max, Millis{5000});
}

TEST(ParseDurationRange, RejectsMinAboveMax) {
    EXPECT_FALSE(ParseDurationRange("10s..5s").has_value());
    EXPECT_FALSE(ParseDurationRange("1s..999ms").has_value());
}

TEST(ParseDurationRange, RejectsMalformed) {
    for (const std::string text :
         {"", "..", "5s..", "..10s", "5s...10s", "5s..10s..15s", "5s.10s", "5s-10s", "5s ..10s",
          "5s.. 10s", "5..10", "5s..10", "-5s..10s", "abc"}) {
        EXPECT_FALSE(ParseDurationRange(text).has_value()) << '"' << text << '"';
    }
}

}  // namespace
}  // namespace conveyor
