#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace conveyor {

// Milliseconds since the Unix epoch, in UTC. Every timestamp the service
// stores or compares uses this unit.
using UnixMillis = std::int64_t;

// Returns the current wall-clock time.
UnixMillis NowMillis();

// Formats as RFC 3339 in UTC with millisecond precision:
// "2026-12-04T15:11:31.123Z".
std::string FormatTimestamp(UnixMillis millis);

// Parses an RFC 3339 date-time with a "Z" or a numeric offset and an
// optional fraction of any length (digits past milliseconds are dropped).
// Returns nullopt on anything else, including impossible dates.
std::optional<UnixMillis> ParseTimestamp(std::string_view text);

}  // namespace conveyor
