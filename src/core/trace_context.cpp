#include "core/trace_context.hpp"

#include <algorithm>

namespace conveyor {
namespace {

constexpr std::size_t kVersion00Length = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2

bool IsLowerHex(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsAllZero(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c == '0'; });
}

}  // namespace

std::optional<TraceParent> ParseTraceParent(std::string_view header) {
    if (header.size() < kVersion00Length || header[2] != '-' || header[35] != '-' ||
        header[52] != '-') {
        return std::nullopt;
    }
    const std::string_view version = header.substr(0, 2);
    if (!IsLowerHex(version) || version == "ff") {
        return std::nullopt;
    }
    if (version == "00" ? header.size() != kVersion00Length
                        : header.size() > kVersion00Length && header[kVersion00Length] != '-') {
        return std::nullopt;
    }
    TraceParent parsed{header.substr(3, 32), header.substr(36, 16), header.substr(53, 2)};
    if (!IsLowerHex(parsed.trace_id) || IsAllZero(parsed.trace_id) ||
        !IsLowerHex(parsed.parent_id) || IsAllZero(parsed.parent_id) || !IsLowerHex(parsed.flags)) {
        return std::nullopt;
    }
    return parsed;
}

}  // namespace conveyor
