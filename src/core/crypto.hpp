#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace conveyor {

// Returns the 32-byte SHA-256 digest of `data`.
std::string Sha256(std::string_view data);

// Returns the 32-byte HMAC-SHA-256 of `data` under `key`.
std::string HmacSha256(std::string_view key, std::string_view data);

// Compares in time that depends only on the lengths, for secrets and MACs.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// Base64 with the URL-safe alphabet and no padding (RFC 4648, section 5).
std::string Base64UrlEncode(std::string_view data);

// Decodes what Base64UrlEncode produces. Returns nullopt on a character
// outside the alphabet, on padding, or on an impossible length.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// Returns lower-case hex.
std::string HexEncode(std::string_view data);

}  // namespace conveyor
