#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/time.hpp"

namespace conveyor {

// Fills `out` from the operating system's cryptographically secure source.
// Aborts if that source fails, because every id and key depends on it.
void FillSecureRandom(std::span<std::byte> out);

// Returns a UUID version 7 (RFC 9562) in lower-case canonical form: 48 bits
// of `millis`, then 74 random bits from FillSecureRandom.
std::string NewUuidV7(UnixMillis millis);

// Returns true for a UUID in canonical 8-4-4-4-12 form of either case.
bool IsUuid(std::string_view text);

// Returns `byte_count` secure random bytes as lower-case hex.
std::string RandomHex(std::size_t byte_count);

}  // namespace conveyor
