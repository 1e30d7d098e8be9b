#include "http/wait_limit.hpp"

#include <gtest/gtest.h>

#include <utility>

namespace conveyor::http {
namespace {

using Outcome = WaitLimit::Outcome;

TEST(WaitLimit, AdmitsUpToTenantBound) {
    WaitLimit limit(2, 0);
    WaitLimit::Slot first;
    WaitLimit::Slot second;
    WaitLimit::Slot third;

    EXPECT_EQ(limit.TryAdmit("alpha", first), Outcome::kAdmitted);
    EXPECT_EQ(limit.TryAdmit("alpha", second), Outcome::kAdmitted);
    EXPECT_EQ(limit.TryAdmit("alpha", third), Outcome::kTenantAtBound);
    EXPECT_EQ(limit.Waiting(), 2u);
}

TEST(WaitLimit, TenantsHaveSeparateBounds) {
    WaitLimit limit(1, 0);
    WaitLimit::Slot alpha;
    WaitLimit::Slot beta;

    ASSERT_EQ(limit.TryAdmit("alpha", alpha), Outcome::kAdmitted);
    EXPECT_EQ(limit.TryAdmit("beta", beta), Outcome::kAdmitted);
}

TEST(WaitLimit, TotalBoundCoversAllTenants) {
    WaitLimit limit(5, 2);
    WaitLimit::Slot alpha;
    WaitLimit::Slot beta;
    WaitLimit::Slot gamma;

    ASSERT_EQ(limit.TryAdmit("alpha", alpha), Outcome::kAdmitted);
    ASSERT_EQ(limit.TryAdmit("beta", beta), Outcome::kAdmitted);
    EXPECT_EQ(limit.TryAdmit("gamma", gamma), Outcome::kServerAtBound);
}

TEST(WaitLimit, DestroyedSlotFreesItsPlace) {
    WaitLimit limit(1, 1);
    {
        WaitLimit::Slot slot;
        ASSERT_EQ(limit.TryAdmit("alpha", slot), Outcome::kAdmitted);
    }
    WaitLimit::Slot again;

    EXPECT_EQ(limit.TryAdmit("alpha", again), Outcome::kAdmitted);
    EXPECT_EQ(limit.Waiting(), 1u);
}

TEST(WaitLimit, MovedSlotReleasesOnce) {
    WaitLimit limit(2, 0);
    WaitLimit::Slot source;
    ASSERT_EQ(limit.TryAdmit("alpha", source), Outcome::kAdmitted);
    {
        WaitLimit::Slot moved(std::move(source));
        EXPECT_EQ(limit.Waiting(), 1u) << "a move must not take a second place";
    }
    source = WaitLimit::Slot();

    EXPECT_EQ(limit.Waiting(), 0u);
}

TEST(WaitLimit, RejectedAdmitLeavesSlotEmpty) {
    WaitLimit limit(1, 0);
    WaitLimit::Slot held;
    ASSERT_EQ(limit.TryAdmit("alpha", held), Outcome::kAdmitted);
    WaitLimit::Slot rejected;

    ASSERT_EQ(limit.TryAdmit("alpha", rejected), Outcome::kTenantAtBound);
    rejected = WaitLimit::Slot();

    EXPECT_EQ(limit.Waiting(), 1u) << "releasing a rejected slot must free nothing";
}

TEST(WaitLimit, ZeroBoundsAreOff) {
    WaitLimit limit(0, 0);
    WaitLimit::Slot slots[3];

    for (WaitLimit::Slot& slot : slots) {
        EXPECT_EQ(limit.TryAdmit("alpha", slot), Outcome::kAdmitted);
    }
}

}  // namespace
}  // namespace conveyor::http
