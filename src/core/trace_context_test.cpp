#include "core/trace_context.hpp"

#include <gtest/gtest.h>

#include <string>

namespace conveyor {
namespace {

constexpr char kValid[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, ParsesVersion00) {
    const auto parsed = ParseTraceParent(kValid);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(parsed->parent_id, "00f067aa0ba902b7");
    EXPECT_EQ(parsed->flags, "01");
}

TEST(TraceParent, LaterVersionMayCarryMoreFields) {
    const std::string header = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
    const auto parsed = ParseTraceParent(header);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceParent, RejectsInvalidHeaders) {
    const char* const invalid[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 with more
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",    // bad flags
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",    // separators
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // bad version
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // no '-' after 55
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // leading space
    };
    for (const char* header : invalid) {
        EXPECT_FALSE(ParseTraceParent(header).has_value()) << header;
    }
}

}  // namespace
}  // namespace conveyor
