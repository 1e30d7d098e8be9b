#include "http/body_budget.hpp"

#include <gtest/gtest.h>

#include <utility>

namespace conveyor::http {
namespace {

TEST(BodyBudget, AdmitsBodiesUpToTheBound) {
    BodyBudget budget(100);
    BodyBudget::Reservation first;
    BodyBudget::Reservation second;
    BodyBudget::Reservation third;

    EXPECT_TRUE(budget.TryReserve("alpha", 60, first));
    EXPECT_TRUE(budget.TryReserve("alpha", 40, second));
    EXPECT_FALSE(budget.TryReserve("alpha", 1, third));
}

TEST(BodyBudget, BoundIsPerTenant) {
    BodyBudget budget(100);
    BodyBudget::Reservation alpha;
    BodyBudget::Reservation beta;

    ASSERT_TRUE(budget.TryReserve("alpha", 100, alpha));

    EXPECT_TRUE(budget.TryReserve("beta", 100, beta));
}

TEST(BodyBudget, ReleasedBytesCanBeReservedAgain) {
    BodyBudget budget(100);
    BodyBudget::Reservation later;
    {
        BodyBudget::Reservation first;
        ASSERT_TRUE(budget.TryReserve("alpha", 100, first));
        ASSERT_FALSE(budget.TryReserve("alpha", 1, later));
    }

    EXPECT_TRUE(budget.TryReserve("alpha", 100, later));
}

TEST(BodyBudget, BodyOverTheBoundPassesAlone) {
    BodyBudget budget(100);
    BodyBudget::Reservation large;
    BodyBudget::Reservation small;

    EXPECT_TRUE(budget.TryReserve("alpha", 500, large));
    EXPECT_FALSE(budget.TryReserve("alpha", 1, small));
}

TEST(BodyBudget, MovedReservationReleasesOnce) {
    BodyBudget budget(100);
    BodyBudget::Reservation moved_to;
    BodyBudget::Reservation probe;
    {
        BodyBudget::Reservation original;
        ASSERT_TRUE(budget.TryReserve("alpha", 100, original));
        moved_to = std::move(original);
    }
    EXPECT_FALSE(budget.TryReserve("alpha", 1, probe)) << "the moved reservation still holds";

    moved_to = BodyBudget::Reservation();

    EXPECT_TRUE(budget.TryReserve("alpha", 100, probe));
}

TEST(BodyBudget, NearBoundWhenLessThanAskedIsLeft) {
    BodyBudget budget(100);
    BodyBudget::Reservation part;

    EXPECT_FALSE(budget.NearBound("alpha", 500)) << "a tenant that holds nothing is never near";
    ASSERT_TRUE(budget.TryReserve("alpha", 60, part));

    EXPECT_FALSE(budget.NearBound("alpha", 40));
    EXPECT_TRUE(budget.NearBound("alpha", 41));
    EXPECT_FALSE(budget.NearBound("beta", 41));
}

TEST(BodyBudget, ZeroBoundIsOff) {
    BodyBudget budget(0);
    BodyBudget::Reservation first;
    BodyBudget::Reservation second;

    EXPECT_TRUE(budget.TryReserve("alpha", 1'000'000, first));
    EXPECT_TRUE(budget.TryReserve("alpha", 1'000'000, second));
}

}  // namespace
}  // namespace conveyor::http
