#include "analysis/word_counter.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string_view>

namespace conveyor::analysis {
namespace {

constexpr std::uint64_t kMultiplier = 0x9E37'79B9'7F4A'7C15;  // 2^64 divided by the golden ratio

std::uint64_t Load64(const char* bytes) {
    std::uint64_t value = 0;
    std::memcpy(&value, bytes, sizeof value);
    return value;
}

std::uint64_t Load32(const char* bytes) {
    std::uint32_t value = 0;
    std::memcpy(&value, bytes, sizeof value);
    return value;
}

// The finaliser of MurmurHash3's 64-bit variant: every input bit affects
// every output bit, so the low bits that pick a slot are well mixed.
std::uint64_t Finalize(std::uint64_t hash) {
    hash ^= hash >> 33;
    hash *= 0xFF51'AFD7'ED55'8CCD;
    hash ^= hash >> 33;
    hash *= 0xC4CE'B9FE'1A85'EC53;
    hash ^= hash >> 33;
    return hash;
}

std::uint64_t Combine(std::uint64_t hash, std::uint64_t value) {
    hash = (hash ^ value) * kMultiplier;
    return hash ^ (hash >> 29);
}

std::uint64_t RandomSeed() {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

}  // namespace

std::uint64_t HashWord(std::string_view word) {
    static const std::uint64_t seed = RandomSeed();
    const char* bytes = word.data();
    std::size_t size = word.size();
    std::uint64_t hash = Combine(seed, size);
    while (size > 8) {
        hash = Combine(hash, Load64(bytes));
        bytes += 8;
        size -= 8;
    }
    // The last 1 to 8 bytes, read as two pieces that may overlap. Together
    // with the length, the pieces determine every byte.
    std::uint64_t tail = 0;
    if (size == 8) {
        tail = Load64(bytes);
    } else if (size >= 4) {
        tail = Load32(bytes) | (Load32(bytes + size - 4) << 32);
    } else if (size > 0) {
        const auto byte = [bytes](std::size_t i) {
            return static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i]));
        };
        tail = byte(0) | (byte(size / 2) << 8) | (byte(size - 1) << 16);
    }
    return Finalize(Combine(hash, tail));
}

WordCounter::WordCounter() : slots_(64), slot_mask_(slots_.size() - 1) {}

void WordCounter::Insert(std::string_view word, std::int64_t count, std::uint64_t hash,
                         std::size_t slot) {
    if (entries_.size() >= kEmptySlot) {
        throw std::length_error("too many distinct words to count");
    }
    slots_[slot] =
        Slot{static_cast<std::uint32_t>(hash >> 32), static_cast<std::uint32_t>(entries_.size())};
    entries_.push_back(Entry{hash, bytes_.size(), word.size(), count});
    bytes_.append(word);

    // At most half the slots are used, which keeps probe sequences short.
    if (entries_.size() * 2 > slots_.size()) {
        Grow();
    }
}

void WordCounter::Grow() {
    slots_.assign(slots_.size() * 2, Slot{});
    slot_mask_ = slots_.size() - 1;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        std::size_t slot = static_cast<std::size_t>(entries_[i].hash) & slot_mask_;
        while (slots_[slot].entry != kEmptySlot) {
            slot = (slot + 1) & slot_mask_;
        }
        slots_[slot] =
            Slot{static_cast<std::uint32_t>(entries_[i].hash >> 32), static_cast<std::uint32_t>(i)};
    }
}

}  // namespace conveyor::analysis
