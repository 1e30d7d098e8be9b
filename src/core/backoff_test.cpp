#include "core/backoff.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <set>

namespace conveyor {
namespace {

constexpr Millis kBase{1000};
constexpr Millis kCap{300'000};

TEST(MaxBackoff, FirstAttemptIsBase) {
    EXPECT_EQ(MaxBackoff(1, kBase, kCap), kBase);
}

TEST(MaxBackoff, DoublesUntilCap) {
    // 1s * 2^8 = 256s is the last value under the 300s cap.
    Millis expected = kBase;
    for (int attempts = 1; attempts <= 9; ++attempts) {
        EXPECT_EQ(MaxBackoff(attempts, kBase, kCap), expected) << "attempts=" << attempts;
        expected *= 2;
    }
}

TEST(MaxBackoff, StaysAtCapAfterReachingIt) {
    for (int attempts = 10; attempts <= 40; ++attempts) {
        EXPECT_EQ(MaxBackoff(attempts, kBase, kCap), kCap) << "attempts=" << attempts;
    }
}

TEST(MaxBackoff, BoundedAndNonDecreasing) {
    Millis previous{0};
    for (int attempts = 1; attempts <= 40; ++attempts) {
        const Millis bound = MaxBackoff(attempts, kBase, kCap);
        EXPECT_GE(bound, kBase) << "attempts=" << attempts;
        EXPECT_LE(bound, kCap) << "attempts=" << attempts;
        EXPECT_GE(bound, previous) << "attempts=" << attempts;
        previous = bound;
    }
}

TEST(MaxBackoff, CapBelowBaseWins) {
    EXPECT_EQ(MaxBackoff(1, Millis{5000}, Millis{2000}), Millis{2000});
    EXPECT_EQ(MaxBackoff(3, Millis{5000}, Millis{2000}), Millis{2000});
}

TEST(MaxBackoff, HugeCapDoesNotOverflow) {
    // With a cap near the largest representable duration, doubling must
    // stop at the cap instead of wrapping around to a negative value.
    const Millis cap = Millis::max();
    for (int attempts = 1; attempts <= 200; ++attempts) {
        const Millis bound = MaxBackoff(attempts, Millis{1}, cap);
        EXPECT_GT(bound, Millis{0}) << "attempts=" << attempts;
        EXPECT_LE(bound, cap) << "attempts=" << attempts;
    }
    EXPECT_EQ(MaxBackoff(200, Millis{1}, cap), cap);
}

TEST(MaxBackoff, HugeBaseDoesNotOverflow) {
    const Millis base{std::numeric_limits<Millis::rep>::max() / 3};
    const Millis cap = Millis::max();
    EXPECT_EQ(MaxBackoff(1, base, cap), base);
    EXPECT_EQ(MaxBackoff(2, base, cap), base * 2);
    EXPECT_EQ(MaxBackoff(3, base, cap), cap);
    EXPECT_EQ(MaxBackoff(20, base, cap), cap);
}

TEST(JitteredBackoff, StaysWithinBounds) {
    for (int attempts = 1; attempts <= 40; ++attempts) {
        const Millis bound = MaxBackoff(attempts, kBase, kCap);
        for (int draw = 0; draw < 200; ++draw) {
            const Millis delay = JitteredBackoff(attempts, kBase, kCap);
            ASSERT_GE(delay, Millis{0}) << "attempts=" << attempts;
            ASSERT_LE(delay, bound) << "attempts=" << attempts;
        }
    }
}

TEST(JitteredBackoff, SpreadsOverWholeInterval) {
    // Full jitter draws uniformly from [0, bound], so 2,000 draws land in
    // both halves of the interval. The chance that they do not is below 2^-1999.
    const Millis bound = MaxBackoff(10, kBase, kCap);
    std::set<Millis::rep> seen;
    Millis lowest = bound;
    Millis highest{0};
    for (int draw = 0; draw < 2000; ++draw) {
        const Millis delay = JitteredBackoff(10, kBase, kCap);
        seen.insert(delay.count());
        lowest = std::min(lowest, delay);
        highest = std::max(highest, delay);
    }
    EXPECT_GT(seen.size(), 1000u) << "draws repeat far more often than uniform draws would";
    EXPECT_LT(lowest, bound / 2);
    EXPECT_GT(highest, bound / 2);
}

TEST(JitteredBackoff, ZeroBaseGivesZero) {
    EXPECT_EQ(JitteredBackoff(5, Millis{0}, kCap), Millis{0});
}

}  // namespace
}  // namespace conveyor
