#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace conveyor {

using Millis = std::chrono::milliseconds;

// Parses a duration written as a whole number and a unit: "250ms", "5s",
// "2m", "1h", or the bare "0". Returns nullopt for anything else, including
// negative values, fractions, missing units and values that overflow.
std::optional<Millis> ParseDuration(std::string_view text);

// Formats a duration in the largest unit that divides it exactly ("1500ms",
// "5s", "2m"), so that ParseDuration(FormatDuration(d)) == d.
std::string FormatDuration(Millis duration);

// A closed interval of durations, written "MIN..MAX" or as one duration
// that stands for both ends.
struct DurationRange {
    Millis min{0};
    Millis max{0};
};

// Parses "5s..10s" or "200ms". Returns nullopt when either end is invalid or
// when MIN is greater than MAX.
std::optional<DurationRange> ParseDurationRange(std::string_view text);

}  // namespace conveyor
