// Fuzzes list cursors. The first input byte picks a mode: decode the rest
// as a cursor, or build a position from it and round-trip it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/ids.hpp"
#include "fuzz_check.hpp"
#include "http/cursor.hpp"

namespace {

using conveyor::ListPosition;
using conveyor::fuzz::Require;

// The key and fingerprint under which the seed corpus's cursors were
// issued, so that mutations start from cursors that decode.
constexpr std::string_view kKey = "fuzz-cursor-key";
constexpr std::string_view kFingerprint = "0123456789ab";

// Decodes `cursor` and checks that a cursor that decodes is exactly the one
// that encoding its position gives, so no second spelling is accepted.
void CheckDecode(std::string_view cursor) {
    const auto position = conveyor::http::DecodeCursor(cursor, kFingerprint, kKey);
    if (!position) {
        return;
    }
    Require(conveyor::IsUuid(position->task_id), "a decoded cursor carries a UUID");
    const std::string again = conveyor::http::EncodeCursor(*position, kFingerprint, kKey);
    Require(again == cursor, "a decoded cursor re-encodes to the same text");
    Require(!conveyor::http::DecodeCursor(cursor, "ba9876543210", kKey),
            "a cursor is rejected for another query");
    Require(!conveyor::http::DecodeCursor(cursor, kFingerprint, "another-key"),
            "a cursor is rejected under another key");
}

// Builds a position and a fingerprint from `bytes`, encodes them, and checks
// that the cursor decodes to the same position, and only for that query.
void CheckRoundTrip(std::string_view bytes) {
    static constexpr std::string_view kHex = "0123456789abcdef";
    ListPosition position;
    std::uint64_t millis = 0;
    for (std::size_t i = 0; i < 8 && i < bytes.size(); ++i) {
        millis = (millis << 8) | static_cast<unsigned char>(bytes[i]);
    }
    position.created_at = static_cast<std::int64_t>(millis);
    position.task_id = "00000000-0000-7000-8000-000000000000";
    std::size_t next = 8;
    for (char& digit : position.task_id) {
        if (digit == '-') {
            continue;
        }
        if (next < bytes.size()) {
            digit = kHex[static_cast<unsigned char>(bytes[next]) % 16];
            ++next;
        }
    }
    const std::string_view fingerprint = next < bytes.size() ? bytes.substr(next) : "";

    const std::string cursor = conveyor::http::EncodeCursor(position, fingerprint, kKey);
    const auto decoded = conveyor::http::DecodeCursor(cursor, fingerprint, kKey);
    if (cursor.size() > 512) {
        Require(!decoded, "a cursor over 512 characters is rejected");
        return;
    }
    Require(decoded.has_value(), "an encoded cursor decodes");
    Require(decoded->created_at == position.created_at, "created_at survives a round trip");
    Require(decoded->task_id == position.task_id, "task_id survives a round trip");
    const std::string other_fingerprint = std::string(fingerprint) + "x";
    Require(!conveyor::http::DecodeCursor(cursor, other_fingerprint, kKey),
            "a cursor is rejected for another query");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] % 2 == 0) {
        CheckDecode(rest);
    } else {
        CheckRoundTrip(rest);
    }
    return 0;
}
