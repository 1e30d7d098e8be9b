#include "core/time.hpp"

#include <gtest/gtest.h>

#include <string>

namespace conveyor {
namespace {

// 2026-12-04T15:11:31.123Z
constexpr UnixMillis kExample = 1'796'397'091'123;

TEST(FormatTimestamp, Epoch) {
    EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000Z");
}

TEST(FormatTimestamp, Example) {
    EXPECT_EQ(FormatTimestamp(kExample), "2026-12-04T15:11:31.123Z");
}

TEST(FormatTimestamp, PadsMilliseconds) {
    EXPECT_EQ(FormatTimestamp(1), "1970-01-01T00:00:00.001Z");
    EXPECT_EQ(FormatTimestamp(10), "1970-01-01T00:00:00.010Z");
    EXPECT_EQ(FormatTimestamp(946'684'800'000), "2000-01-01T00:00:00.000Z");
}

TEST(FormatTimestamp, LeapDay) {
    EXPECT_EQ(FormatTimestamp(1'709'251'199'999), "2024-02-29T23:59:59.999Z");
}

TEST(FormatTimestamp, BeforeEpoch) {
    EXPECT_EQ(FormatTimestamp(-1), "1969-12-31T23:59:59.999Z");
}

TEST(ParseTimestamp, AcceptsUpperCaseZ) {
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.123Z"), kExample);
}

TEST(ParseTimestamp, AcceptsLowerCaseZAndT) {
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.123z"), kExample);
    EXPECT_EQ(ParseTimestamp("2026-12-04t15:11:31.123z"), kExample);
}

TEST(ParseTimestamp, AcceptsWithoutFraction) {
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31Z"), kExample - 123);
    EXPECT_EQ(ParseTimestamp("1970-01-01T00:00:00Z"), 0);
}

TEST(ParseTimestamp, AppliesOffsets) {
    EXPECT_EQ(ParseTimestamp("2026-12-04T17:11:31.123+02:00"), kExample);
    EXPECT_EQ(ParseTimestamp("2026-12-04T09:41:31.123-05:30"), kExample);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.123+00:00"), kExample);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.123-00:00"), kExample);
}

TEST(ParseTimestamp, OffsetCrossesDate) {
    EXPECT_EQ(ParseTimestamp("1970-01-01T01:00:00+01:00"), 0);
    EXPECT_EQ(ParseTimestamp("1969-12-31T23:00:00-01:00"), 0);
}

TEST(ParseTimestamp, AcceptsFractionsOfAnyLength) {
    const UnixMillis second = kExample - 123;
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.1Z"), second + 100);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.12Z"), second + 120);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.123Z"), second + 123);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.1234Z"), second + 123);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.12345Z"), second + 123);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.123456Z"), second + 123);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.1234567Z"), second + 123);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.12345678Z"), second + 123);
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.123456789Z"), second + 123);
}

TEST(ParseTimestamp, DropsDigitsPastMilliseconds) {
    EXPECT_EQ(ParseTimestamp("2026-12-04T15:11:31.999999999Z"), kExample - 123 + 999);
}

TEST(ParseTimestamp, AcceptsLeapDay) {
    EXPECT_EQ(ParseTimestamp("2024-02-29T23:59:59.999Z"), 1'709'251'199'999);
    EXPECT_TRUE(ParseTimestamp("2000-02-29T00:00:00Z").has_value());
}

TEST(ParseTimestamp, RoundTripsFormat) {
    for (const UnixMillis millis :
         {UnixMillis{0}, UnixMillis{1}, UnixMillis{999}, kExample, UnixMillis{1'709'251'199'999},
          UnixMillis{253'402'300'799'999}}) {
        EXPECT_EQ(ParseTimestamp(FormatTimestamp(millis)), millis) << FormatTimestamp(millis);
    }
}

TEST(ParseTimestamp, RejectsImpossibleDates) {
    for (const std::string text :
         {"2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
          "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
          "2026-12-00T00:00:00Z", "2026-12-32T00:00:00Z"}) {
        EXPECT_FALSE(ParseTimestamp(text).has_value()) << text;
    }
}

TEST(ParseTimestamp, RejectsImpossibleTimes) {
    for (const std::string text :
         {"2026-12-04T24:00:00Z", "2026-12-04T15:60:00Z", "2026-12-04T15:11:60Z",
          "2026-12-04T15:11:31+24:00", "2026-12-04T15:11:31+02:60"}) {
        EXPECT_FALSE(ParseTimestamp(text).has_value()) << text;
    }
}

TEST(ParseTimestamp, RejectsMissingZone) {
    EXPECT_FALSE(ParseTimestamp("2026-12-04T15:11:31").has_value());
    EXPECT_FALSE(ParseTimestamp("2026-12-04T15:11:31.123").has_value());
}

TEST(ParseTimestamp, RejectsMalformed) {
    for (const std::string text : {"",
                                   "garbage",
                                   "2026-12-04",
                                   "2026-12-04T15:11Z",
                                   "2026-12-04 15:11:31Z",
                                   "2026-12-04X15:11:31Z",
                                   "2026/12/04T15:11:31Z",
                                   "26-12-04T15:11:31Z",
                                   "2026-12-4T15:11:31Z",
                                   "2026-12-04T15:11:31.Z",
                                   "2026-12-04T15:11:31.123ZZ",
                                   "2026-12-04T15:11:31Z ",
                                   " 2026-12-04T15:11:31Z",
                                   "2026-12-04T15:11:31+0200",
                                   "2026-12-04T15:11:31+02",
                                   "2026-12-04T15:11:31+2:00",
                                   "2026-12-04T15:11:31+02:00Z",
                                   "2026-12-04T15:11:31.12a4Z",
                                   "2026-12-04T15:11:31,123Z",
                                   "+2026-12-04T15:11:31Z",
                                   "2026-12-04T15:11:31UTC"}) {
        EXPECT_FALSE(ParseTimestamp(text).has_value()) << '"' << text << '"';
    }
}

TEST(NowMillis, CountsMillisecondsSinceEpoch) {
    // The bounds are 2020-01-01 and 2100-01-01, so seconds or microseconds
    // fall outside them.
    EXPECT_GT(NowMillis(), 1'577'836'800'000);
    EXPECT_LT(NowMillis(), 4'102'444'800'000);
}

}  // namespace
}  // namespace conveyor
