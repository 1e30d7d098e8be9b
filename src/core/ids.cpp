#include "core/ids.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace conveyor {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void AppendHex(std::string& out, std::span<const std::byte> bytes) {
    for (const std::byte b : bytes) {
        const auto value = std::to_integer<unsigned>(b);
        out.push_back(kHexDigits[value >> 4]);
        out.push_back(kHexDigits[value & 0xF]);
    }
}

bool IsHexDigit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

void FillSecureRandom(std::span<std::byte> out) {
    // getrandom blocks only until the kernel's pool is first seeded, at
    // boot. A signal can end a call early, so the rest is requested again.
    std::size_t filled = 0;
    while (filled < out.size()) {
        const ssize_t got = getrandom(out.data() + filled, out.size() - filled, 0);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            std::fprintf(stderr, "fatal: getrandom failed: %s\n",
                         got < 0 ? std::strerror(errno) : "no bytes returned");
            std::abort();
        }
        filled += static_cast<std::size_t>(got);
    }
}

std::string NewUuidV7(UnixMillis millis) {
    std::array<std::byte, 16> bytes{};
    FillSecureRandom(std::span(bytes).subspan(6));
    const auto timestamp = static_cast<std::uint64_t>(millis);
    for (int i = 0; i < 6; ++i) {
        bytes[i] = static_cast<std::byte>((timestamp >> (8 * (5 - i))) & 0xFF);
    }
    bytes[6] = (bytes[6] & std::byte{0x0F}) | std::byte{0x70};  // version 7
    bytes[8] = (bytes[8] & std::byte{0x3F}) | std::byte{0x80};  // RFC 9562 variant

    std::string text;
    text.reserve(36);
    const std::span<const std::byte> all(bytes);
    AppendHex(text, all.subspan(0, 4));
    text.push_back('-');
    AppendHex(text, all.subspan(4, 2));
    text.push_back('-');
    AppendHex(text, all.subspan(6, 2));
    text.push_back('-');
    AppendHex(text, all.subspan(8, 2));
    text.push_back('-');
    AppendHex(text, all.subspan(10, 6));
    return text;
}

bool IsUuid(std::string_view text) {
    if (text.size() != 36) {
        return false;
    }
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_position ? text[i] != '-' : !IsHexDigit(text[i])) {
            return false;
        }
    }
    return true;
}

std::string RandomHex(std::size_t byte_count) {
    std::vector<std::byte> bytes(byte_count);
    FillSecureRandom(bytes);
    std::string text;
    text.reserve(byte_count * 2);
    AppendHex(text, bytes);
    return text;
}

}  // namespace conveyor
