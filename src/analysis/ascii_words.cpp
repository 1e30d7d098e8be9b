#include "analysis/ascii_words.hpp"

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace conveyor::analysis {
namespace {

// Flags of one byte's class. A byte of 0x80 or above has none.
enum ByteFlag : std::uint8_t {
    kWordPart = 1 << 0,      // letter, digit or underscore
    kLetter = 1 << 1,        // A-Z, a-z and '@'
    kDigit = 1 << 2,         // 0-9
    kUpper = 1 << 3,         // A-Z, which NFKC_Casefold lower-cases
    kJoinsLetters = 1 << 4,  // '.' and '\'' between two letters
    kJoinsDigits = 1 << 5,   // '.', '\'', ',' and ';' between two digits
    kSeparator = 1 << 6,     // every other ASCII byte
};

constexpr std::array<std::uint8_t, 256> MakeByteFlags() {
    std::array<std::uint8_t, 256> flags{};
    for (int byte = 0; byte < 0x80; ++byte) {
        flags[byte] = kSeparator;
    }
    for (int byte = 'a'; byte <= 'z'; ++byte) {
        flags[byte] = kWordPart | kLetter;
    }
    for (int byte = 'A'; byte <= 'Z'; ++byte) {
        flags[byte] = kWordPart | kLetter | kUpper;
    }
    for (int byte = '0'; byte <= '9'; ++byte) {
        flags[byte] = kWordPart | kDigit;
    }
    flags['@'] = kWordPart | kLetter;
    flags['_'] = kWordPart;
    flags['.'] = kJoinsLetters | kJoinsDigits;
    flags['\''] = kJoinsLetters | kJoinsDigits;
    flags[','] = kJoinsDigits;
    flags[';'] = kJoinsDigits;
    return flags;
}

constexpr std::array<std::uint8_t, 256> kByteFlags = MakeByteFlags();

std::uint8_t Flags(char byte) {
    return kByteFlags[static_cast<unsigned char>(byte)];
}

// Returns true when `middle`, between bytes of classes `before` and `after`,
// belongs to the word (UAX #29 rules WB6, WB7, WB11 and WB12).
bool JoinsAcross(std::uint8_t before, std::uint8_t middle, std::uint8_t after) {
    const std::uint8_t both = before & after;
    return ((both & kLetter) != 0 && (middle & kJoinsLetters) != 0) ||
           ((both & kDigit) != 0 && (middle & kJoinsDigits) != 0);
}

// Returns the end of the word that starts at `start`, a word part, and ORs
// the flags of its letters, digits and underscores into `seen`.
std::size_t FindWordEnd(std::string_view text, std::size_t start, std::uint8_t& seen) {
    std::uint8_t previous = Flags(text[start]);
    seen = previous;
    std::size_t i = start + 1;
    while (i < text.size()) {
        const std::uint8_t current = Flags(text[i]);
        if ((current & kWordPart) != 0) {
            seen |= current;
            previous = current;
            ++i;
        } else if (i + 1 < text.size() && JoinsAcross(previous, current, Flags(text[i + 1]))) {
            previous = Flags(text[i + 1]);
            seen |= previous;
            i += 2;
        } else {
            break;
        }
    }
    return i;
}

}  // namespace

std::size_t FindNonAscii(std::string_view text, std::size_t from) {
    constexpr std::uint64_t kHighBits = 0x8080'8080'8080'8080;
    std::size_t i = from;
    for (; i + 8 <= text.size(); i += 8) {
        std::uint64_t block = 0;
        std::memcpy(&block, text.data() + i, sizeof block);
        block &= kHighBits;
        if (block != 0) {
            // Little-endian: the lowest set bit belongs to the first such byte.
            if constexpr (std::endian::native == std::endian::little) {
                return i + static_cast<std::size_t>(std::countr_zero(block)) / 8;
            }
            break;
        }
    }
    for (; i < text.size(); ++i) {
        if (static_cast<unsigned char>(text[i]) >= 0x80) {
            return i;
        }
    }
    return text.size();
}

bool IsSafeSplit(std::string_view text, std::size_t position) {
    return position > 0 && position < text.size() &&
           (Flags(text[position - 1]) & kSeparator) != 0 &&
           (Flags(text[position]) & kWordPart) != 0;
}

std::size_t LastSafeSplit(std::string_view text, std::size_t from, std::size_t to) {
    for (std::size_t position = to; position > from; --position) {
        if (IsSafeSplit(text, position)) {
            return position;
        }
    }
    return from;
}

std::size_t NextSafeSplit(std::string_view text, std::size_t from) {
    if (from >= text.size()) {
        return text.size();
    }
    std::uint8_t previous = Flags(text[from]);
    for (std::size_t position = from + 1; position < text.size(); ++position) {
        const std::uint8_t current = Flags(text[position]);
        if ((previous & kSeparator) != 0 && (current & kWordPart) != 0) {
            return position;
        }
        previous = current;
    }
    return text.size();
}

std::int64_t CountAsciiWords(std::string_view text, WordCounter& counter) {
    std::int64_t word_count = 0;
    std::string folded;
    std::size_t i = 0;
    while (i < text.size()) {
        if ((Flags(text[i]) & kWordPart) == 0) {
            ++i;
            continue;
        }

        const std::size_t start = i;
        std::uint8_t seen = 0;
        i = FindWordEnd(text, start, seen);
        std::string_view word = text.substr(start, i - start);
        if ((seen & (kLetter | kDigit)) == 0 && word.size() < 2) {
            continue;  // a lone underscore
        }

        ++word_count;
        if ((seen & kUpper) != 0) {
            folded.assign(word);
            for (char& byte : folded) {
                if ((Flags(byte) & kUpper) != 0) {
                    byte = static_cast<char>(byte + ('a' - 'A'));
                }
            }
            word = folded;
        }
        counter.Add(word);
    }
    return word_count;
}

}  // namespace conveyor::analysis
