#include "core/duration.hpp"

#include <cstdint>
#include <limits>

namespace conveyor {

std::optional<Millis> ParseDuration(std::string_view text) {
    if (text == "0") {
        return Millis{0};
    }
    std::size_t pos = 0;
    std::int64_t value = 0;
    constexpr std::int64_t kLimit = std::numeric_limits<std::int64_t>::max() / 3'600'000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        value = value * 10 + (text[pos] - '0');
        if (value > kLimit) {
            return std::nullopt;
        }
        ++pos;
    }
    if (pos == 0) {
        return std::nullopt;
    }
    const std::string_view unit = text.substr(pos);
    if (unit == "ms") {
        return Millis{value};
    }
    if (unit == "s") {
        return Millis{value * 1000};
    }
    if (unit == "m") {
        return Millis{value * 60'000};
    }
    if (unit == "h") {
        return Millis{value * 3'600'000};
    }
    return std::nullopt;
}

std::string FormatDuration(Millis duration) {
    const std::int64_t ms = duration.count();
    if (ms == 0) {
        return "0";
    }
    if (ms % 3'600'000 == 0) {
        return std::to_string(ms / 3'600'000) + "h";
    }
    if (ms % 60'000 == 0) {
        return std::to_string(ms / 60'000) + "m";
    }
    if (ms % 1000 == 0) {
        return std::to_string(ms / 1000) + "s";
    }
    return std::to_string(ms) + "ms";
}

std::optional<DurationRange> ParseDurationRange(std::string_view text) {
    const std::size_t separator = text.find("..");
    if (separator == std::string_view::npos) {
        const auto single = ParseDuration(text);
        if (!single) {
            return std::nullopt;
        }
        return DurationRange{*single, *single};
    }
    const auto min = ParseDuration(text.substr(0, separator));
    const auto max = ParseDuration(text.substr(separator + 2));
    if (!min || !max || *min > *max) {
        return std::nullopt;
    }
    return DurationRange{*min, *max};
}

}  // namespace conveyor
