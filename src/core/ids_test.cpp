#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <unordered_set>

namespace conveyor {
namespace {

// 2026-12-04T15:11:31.123Z, 0x01a2419c4933 in hex.
constexpr UnixMillis kMillis = 1'796'397'091'123;

bool IsLowerHex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

TEST(NewUuidV7, HasCanonicalLowerCaseForm) {
    const std::string id = NewUuidV7(kMillis);
    ASSERT_EQ(id.size(), 36u);
    for (std::size_t i = 0; i < id.size(); ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            EXPECT_EQ(id[i], '-') << "position " << i << " of " << id;
        } else {
            EXPECT_TRUE(IsLowerHex(id[i])) << "position " << i << " of " << id;
        }
    }
}

TEST(NewUuidV7, HasVersionSeven) {
    for (int i = 0; i < 100; ++i) {
        const std::string id = NewUuidV7(kMillis);
        EXPECT_EQ(id[14], '7') << id;
    }
}

TEST(NewUuidV7, HasRfcVariant) {
    // The variant bits 10 make the first digit of the fourth group 8, 9, a or b.
    for (int i = 0; i < 100; ++i) {
        const std::string id = NewUuidV7(kMillis);
        const std::string allowed = "89ab";
        EXPECT_NE(allowed.find(id[19]), std::string::npos) << id;
    }
}

TEST(NewUuidV7, EmbedsMilliseconds) {
    const std::string id = NewUuidV7(kMillis);
    EXPECT_EQ(id.substr(0, 13), "01a2419c-4933");
}

TEST(NewUuidV7, EmbedsEpochAndLargestTimestamp) {
    EXPECT_EQ(NewUuidV7(0).substr(0, 13), "00000000-0000");
    EXPECT_EQ(NewUuidV7(0xFFFF'FFFF'FFFF).substr(0, 13), "ffffffff-ffff");
}

TEST(NewUuidV7, SortsByTimestamp) {
    EXPECT_LT(NewUuidV7(kMillis), NewUuidV7(kMillis + 1));
    EXPECT_LT(NewUuidV7(kMillis), NewUuidV7(kMillis + 1'000'000));
}

TEST(NewUuidV7, UniqueWithinOneMillisecond) {
    std::unordered_set<std::string> seen;
    constexpr int kDraws = 100'000;
    for (int i = 0; i < kDraws; ++i) {
        seen.insert(NewUuidV7(kMillis));
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kDraws));
}

TEST(NewUuidV7, PassesIsUuid) {
    EXPECT_TRUE(IsUuid(NewUuidV7(kMillis)));
}

TEST(IsUuid, AcceptsEitherCase) {
    EXPECT_TRUE(IsUuid("0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b"));
    EXPECT_TRUE(IsUuid("0193A1B2-7C3D-7E4F-8A5B-6C7D8E9F0A1B"));
    EXPECT_TRUE(IsUuid("0193a1B2-7c3D-7E4f-8a5b-6C7d8e9f0A1b"));
    EXPECT_TRUE(IsUuid("00000000-0000-0000-0000-000000000000"));
}

TEST(IsUuid, RejectsWrongLength) {
    EXPECT_FALSE(IsUuid(""));
    EXPECT_FALSE(IsUuid("0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1"));
    EXPECT_FALSE(IsUuid("0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b0"));
    EXPECT_FALSE(IsUuid("0193a1b27c3d7e4f8a5b6c7d8e9f0a1b"));
    EXPECT_FALSE(IsUuid("{0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b}"));
}

TEST(IsUuid, RejectsMisplacedDashes) {
    EXPECT_FALSE(IsUuid("0193a1b27-c3d-7e4f-8a5b-6c7d8e9f0a1b"));
    EXPECT_FALSE(IsUuid("0193a1b2-7c3d7-e4f-8a5b-6c7d8e9f0a1b"));
    EXPECT_FALSE(IsUuid("0193a1b2-7c3d-7e4f8-a5b-6c7d8e9f0a1b"));
    EXPECT_FALSE(IsUuid("0193a1b2-7c3d-7e4f-8a5b6-c7d8e9f0a1b"));
    EXPECT_FALSE(IsUuid("0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f-a1b"));
    EXPECT_FALSE(IsUuid("0193a1b2_7c3d_7e4f_8a5b_6c7d8e9f0a1b"));
}

TEST(IsUuid, RejectsNonHexDigits) {
    EXPECT_FALSE(IsUuid("0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1g"));
    EXPECT_FALSE(IsUuid("g193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b"));
    EXPECT_FALSE(IsUuid("0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1 "));
    EXPECT_FALSE(IsUuid("0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a-b"));
    EXPECT_FALSE(IsUuid(std::string("0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1\0", 36)));
}

TEST(RandomHex, HasRequestedLength) {
    EXPECT_EQ(RandomHex(0), "");
    EXPECT_EQ(RandomHex(1).size(), 2u);
    EXPECT_EQ(RandomHex(32).size(), 64u);
}

TEST(RandomHex, IsLowerHexAndVaries) {
    const std::string first = RandomHex(32);
    for (const char c : first) {
        EXPECT_TRUE(IsLowerHex(c)) << first;
    }
    EXPECT_NE(first, RandomHex(32));
}

TEST(FillSecureRandom, FillsWholeBuffer) {
    // Sixteen random bytes are all zero with a chance of 2^-128, so a zero
    // run at either end means that end was left unfilled.
    std::array<std::byte, 64> bytes{};
    FillSecureRandom(bytes);
    const auto is_zero = [](std::byte b) { return b == std::byte{0}; };
    EXPECT_FALSE(std::all_of(bytes.begin(), bytes.begin() + 16, is_zero));
    EXPECT_FALSE(std::all_of(bytes.end() - 16, bytes.end(), is_zero));
}

}  // namespace
}  // namespace conveyor
