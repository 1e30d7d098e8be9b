#include "http/cursor.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace conveyor::http {
namespace {

constexpr std::string_view kKey = "0123456789abcdef0123456789abcdef";
constexpr std::string_view kOtherKey = "fedcba9876543210fedcba9876543210";
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

ListQuery BaseQuery() {
    ListQuery query;
    query.tenant = "acme";
    query.statuses = {TaskStatus::kPending, TaskStatus::kFailed};
    query.type = "text.analyze";
    query.created_after = 1'796'000'000'000;
    query.created_before = 1'797'000'000'000;
    query.descending = true;
    query.limit = 20;
    return query;
}

ListPosition SamplePosition() {
    return ListPosition{1'796'397'091'123, "0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b"};
}

std::string IssueCursor(const ListQuery& query) {
    return EncodeCursor(SamplePosition(), QueryFingerprint(query), kKey);
}

bool Accepts(std::string_view cursor, const ListQuery& query) {
    return DecodeCursor(cursor, QueryFingerprint(query), kKey).has_value();
}

TEST(Cursor, RoundTrips) {
    const ListQuery query = BaseQuery();
    const auto position = DecodeCursor(IssueCursor(query), QueryFingerprint(query), kKey);
    ASSERT_TRUE(position.has_value());
    EXPECT_EQ(position->created_at, SamplePosition().created_at);
    EXPECT_EQ(position->task_id, SamplePosition().task_id);
}

TEST(Cursor, RoundTripsEpochAndEmptyFilters) {
    const ListQuery query;
    const ListPosition start{0, "00000000-0000-7000-8000-000000000000"};
    const std::string fingerprint = QueryFingerprint(query);
    const auto position = DecodeCursor(EncodeCursor(start, fingerprint, kKey), fingerprint, kKey);
    ASSERT_TRUE(position.has_value());
    EXPECT_EQ(position->created_at, 0);
    EXPECT_EQ(position->task_id, start.task_id);
}

TEST(Cursor, IsUrlSafe) {
    const std::string cursor = IssueCursor(BaseQuery());
    EXPECT_FALSE(cursor.empty());
    EXPECT_EQ(cursor.find_first_not_of(kAlphabet), std::string::npos) << cursor;
}

TEST(Cursor, RejectsEverySingleCharacterChange) {
    const ListQuery query = BaseQuery();
    const std::string cursor = IssueCursor(query);
    ASSERT_TRUE(Accepts(cursor, query));
    int accepted = 0;
    for (std::size_t i = 0; i < cursor.size(); ++i) {
        for (const char replacement : kAlphabet) {
            if (replacement == cursor[i]) {
                continue;
            }
            std::string tampered = cursor;
            tampered[i] = replacement;
            if (Accepts(tampered, query)) {
                ++accepted;
                ADD_FAILURE() << "accepted with position " << i << " set to " << replacement;
            }
        }
    }
    EXPECT_EQ(accepted, 0);
}

TEST(Cursor, RejectsTruncatedOrExtended) {
    const ListQuery query = BaseQuery();
    const std::string cursor = IssueCursor(query);
    for (std::size_t length = 0; length < cursor.size(); ++length) {
        EXPECT_FALSE(Accepts(cursor.substr(0, length), query)) << "length " << length;
    }
    EXPECT_FALSE(Accepts(cursor + "A", query));
    EXPECT_FALSE(Accepts(cursor + "AA", query));
    EXPECT_FALSE(Accepts(cursor + "AAAA", query));
    EXPECT_FALSE(Accepts(cursor.substr(1), query));
}

TEST(Cursor, RejectsOtherKey) {
    const ListQuery query = BaseQuery();
    const std::string fingerprint = QueryFingerprint(query);
    const std::string cursor = EncodeCursor(SamplePosition(), fingerprint, kOtherKey);
    EXPECT_FALSE(DecodeCursor(cursor, fingerprint, kKey).has_value());
    EXPECT_TRUE(DecodeCursor(cursor, fingerprint, kOtherKey).has_value());
}

TEST(Cursor, RejectsOtherStatusFilter) {
    const std::string cursor = IssueCursor(BaseQuery());
    ListQuery other = BaseQuery();
    other.statuses = {TaskStatus::kPending};
    EXPECT_FALSE(Accepts(cursor, other));
    other.statuses = {};
    EXPECT_FALSE(Accepts(cursor, other));
    other.statuses = {TaskStatus::kPending, TaskStatus::kFailed, TaskStatus::kCancelled};
    EXPECT_FALSE(Accepts(cursor, other));
}

TEST(Cursor, AcceptsStatusesInAnotherOrder) {
    const std::string cursor = IssueCursor(BaseQuery());
    ListQuery reordered = BaseQuery();
    reordered.statuses = {TaskStatus::kFailed, TaskStatus::kPending};
    EXPECT_TRUE(Accepts(cursor, reordered));
}

TEST(Cursor, RejectsOtherType) {
    const std::string cursor = IssueCursor(BaseQuery());
    ListQuery other = BaseQuery();
    other.type = "text.other";
    EXPECT_FALSE(Accepts(cursor, other));
    other.type.reset();
    EXPECT_FALSE(Accepts(cursor, other));
}

TEST(Cursor, RejectsOtherCreatedAfter) {
    const std::string cursor = IssueCursor(BaseQuery());
    ListQuery other = BaseQuery();
    other.created_after = *other.created_after + 1;
    EXPECT_FALSE(Accepts(cursor, other));
    other.created_after.reset();
    EXPECT_FALSE(Accepts(cursor, other));
}

TEST(Cursor, RejectsOtherCreatedBefore) {
    const std::string cursor = IssueCursor(BaseQuery());
    ListQuery other = BaseQuery();
    other.created_before = *other.created_before - 1;
    EXPECT_FALSE(Accepts(cursor, other));
    other.created_before.reset();
    EXPECT_FALSE(Accepts(cursor, other));
}

TEST(Cursor, BoundsAreNotInterchangeable) {
    ListQuery after_only;
    after_only.created_after = 1'796'000'000'000;
    ListQuery before_only;
    before_only.created_before = 1'796'000'000'000;
    EXPECT_FALSE(Accepts(IssueCursor(after_only), before_only));
}

TEST(Cursor, RejectsOtherOrder) {
    const std::string cursor = IssueCursor(BaseQuery());
    ListQuery other = BaseQuery();
    other.descending = false;
    EXPECT_FALSE(Accepts(cursor, other));
}

TEST(Cursor, RejectsOtherTenant) {
    const std::string cursor = IssueCursor(BaseQuery());
    ListQuery other = BaseQuery();
    other.tenant = "globex";
    EXPECT_FALSE(Accepts(cursor, other));
    other.tenant = "";
    EXPECT_FALSE(Accepts(cursor, other));
}

TEST(Cursor, AcceptsOtherLimit) {
    const std::string cursor = IssueCursor(BaseQuery());
    ListQuery other = BaseQuery();
    other.limit = 100;
    EXPECT_TRUE(Accepts(cursor, other));
    other.limit = 1;
    EXPECT_TRUE(Accepts(cursor, other));
}

TEST(Cursor, IgnoresPositionInFingerprint) {
    ListQuery resumed = BaseQuery();
    resumed.after = SamplePosition();
    EXPECT_EQ(QueryFingerprint(resumed), QueryFingerprint(BaseQuery()));
}

TEST(Cursor, RejectsGarbage) {
    const ListQuery query = BaseQuery();
    for (const std::string_view garbage :
         {"", "A", "AA", "not-a-cursor", "!!!!", "Zm9vYmFy", "c1", "====", "a b c"}) {
        EXPECT_FALSE(Accepts(garbage, query)) << '"' << garbage << '"';
    }
}

TEST(Cursor, RejectsOverLongInput) {
    const ListQuery query = BaseQuery();
    EXPECT_FALSE(Accepts(std::string(513, 'A'), query));
    EXPECT_FALSE(Accepts(std::string(100'000, 'A'), query));
}

TEST(Cursor, RejectsSignedPositionWithInvalidTaskId) {
    // A cursor signed with the right key still carries a task id that must
    // be a UUID.
    const ListQuery query = BaseQuery();
    const std::string fingerprint = QueryFingerprint(query);
    const std::string cursor =
        EncodeCursor(ListPosition{1'796'397'091'123, "not-a-uuid"}, fingerprint, kKey);
    EXPECT_FALSE(DecodeCursor(cursor, fingerprint, kKey).has_value());
}

}  // namespace
}  // namespace conveyor::http
