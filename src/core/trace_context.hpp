#pragma once

#include <optional>
#include <string_view>

namespace conveyor {

// The fields of a W3C Trace Context `traceparent` header, viewed in the
// header text, which must outlive them.
struct TraceParent {
    std::string_view trace_id;   // 32 lower-case hex digits, not all zero
    std::string_view parent_id;  // 16 lower-case hex digits, not all zero: the caller's span
    std::string_view flags;      // 2 hex digits; 01 means sampled
};

// Parses "VERSION-TRACEID-PARENTID-FLAGS" as W3C Trace Context Level 1
// defines it. Version 00 must be exactly 55 characters; a later version may
// carry more fields after a '-', which are ignored. Version ff, upper-case
// hex and all-zero ids are invalid. Returns nullopt for an invalid header.
std::optional<TraceParent> ParseTraceParent(std::string_view header);

}  // namespace conveyor
