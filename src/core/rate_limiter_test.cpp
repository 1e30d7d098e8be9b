#include "core/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace conveyor {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

const SteadyTime kT0 = SteadyTime() + hours(1);

TEST(TokenBucket, StartsFullWithBurst) {
    TokenBucket bucket(1, 3, kT0);

    EXPECT_EQ(bucket.TryTake(kT0), Millis{0});
    EXPECT_EQ(bucket.TryTake(kT0), Millis{0});
    EXPECT_EQ(bucket.TryTake(kT0), Millis{0});
    EXPECT_GT(bucket.TryTake(kT0), Millis{0}) << "the fourth request exceeds the burst of 3";
}

TEST(TokenBucket, ReturnsTimeUntilNextToken) {
    TokenBucket bucket(4, 1, kT0);
    ASSERT_EQ(bucket.TryTake(kT0), Millis{0});

    EXPECT_EQ(bucket.TryTake(kT0), Millis{250});
    EXPECT_EQ(bucket.TryTake(kT0 + milliseconds(100)), Millis{150});
}

TEST(TokenBucket, RefillsAtRate) {
    TokenBucket bucket(2, 1, kT0);
    ASSERT_EQ(bucket.TryTake(kT0), Millis{0});
    ASSERT_GT(bucket.TryTake(kT0 + milliseconds(499)), Millis{0});

    EXPECT_EQ(bucket.TryTake(kT0 + milliseconds(500)), Millis{0});
}

TEST(TokenBucket, RefusedRequestTakesNoToken) {
    TokenBucket bucket(1, 1, kT0);
    ASSERT_EQ(bucket.TryTake(kT0), Millis{0});
    for (int i = 0; i < 10; ++i) {
        ASSERT_GT(bucket.TryTake(kT0 + milliseconds(i)), Millis{0});
    }

    EXPECT_EQ(bucket.TryTake(kT0 + milliseconds(1000)), Millis{0});
}

TEST(TokenBucket, NeverHoldsMoreThanBurst) {
    TokenBucket bucket(100, 2, kT0);
    const SteadyTime later = kT0 + hours(5);

    EXPECT_EQ(bucket.TryTake(later), Millis{0});
    EXPECT_EQ(bucket.TryTake(later), Millis{0});
    EXPECT_GT(bucket.TryTake(later), Millis{0});
}

TEST(TokenBucket, EarlierClockReadAddsNothing) {
    TokenBucket bucket(1, 1, kT0);
    ASSERT_EQ(bucket.TryTake(kT0), Millis{0});

    EXPECT_EQ(bucket.TryTake(kT0 - milliseconds(500)), Millis{1500});
}

TEST(TokenBucket, FractionalRateWaitsSeconds) {
    TokenBucket bucket(0.1, 1, kT0);
    ASSERT_EQ(bucket.TryTake(kT0), Millis{0});

    EXPECT_EQ(bucket.TryTake(kT0), Millis{10'000});
}

TEST(RateLimiter, TenantsHaveTheirOwnBuckets) {
    RateLimiter limiter(1, 1);
    ASSERT_EQ(limiter.Admit("a", kT0), Millis{0});
    ASSERT_GT(limiter.Admit("a", kT0), Millis{0});

    EXPECT_EQ(limiter.Admit("b", kT0), Millis{0});
}

TEST(RetryAfter, RoundsUpToWholeSecondsOfAtLeastOne) {
    EXPECT_EQ(FormatRetryAfter(Millis{0}), "1");
    EXPECT_EQ(FormatRetryAfter(Millis{1}), "1");
    EXPECT_EQ(FormatRetryAfter(Millis{1000}), "1");
    EXPECT_EQ(FormatRetryAfter(Millis{1001}), "2");
    EXPECT_EQ(FormatRetryAfter(Millis{10'000}), "10");
}

}  // namespace
}  // namespace conveyor
