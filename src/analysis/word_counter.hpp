#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

// Internal to conveyor_analysis and its tests.

namespace conveyor::analysis {

// Hashes a byte string. The seed is chosen at random once per process, so
// words that collide in a WordCounter cannot be computed in advance without
// it. Not a cryptographic hash.
std::uint64_t HashWord(std::string_view word);

// Counts the occurrences of distinct byte strings. An open-addressing hash
// table with linear probing over the entries, whose bytes are kept in one
// growing buffer, so that adding a word seen before allocates nothing.
// Not thread-safe.
class WordCounter {
  public:
    WordCounter();

    // Adds `count` occurrences of `word`.
    void Add(std::string_view word, std::int64_t count = 1) {
        const std::uint64_t hash = HashWord(word);
        const std::uint32_t tag = static_cast<std::uint32_t>(hash >> 32);
        std::size_t slot = static_cast<std::size_t>(hash) & slot_mask_;
        while (slots_[slot].entry != kEmptySlot) {
            if (slots_[slot].tag == tag) {
                Entry& entry = entries_[slots_[slot].entry];
                if (entry.length == word.size() &&
                    std::memcmp(bytes_.data() + entry.offset, word.data(), word.size()) == 0) {
                    entry.count += count;
                    return;
                }
            }
            slot = (slot + 1) & slot_mask_;
        }
        Insert(word, count, hash, slot);
    }

    // Returns the number of distinct words.
    std::size_t size() const { return entries_.size(); }

    // Calls visit(word, count) for each distinct word, in the order of their
    // first occurrence. The views stay valid until the next Add.
    template <typename Visit>
    void ForEach(Visit&& visit) const {
        for (const Entry& entry : entries_) {
            visit(std::string_view(bytes_.data() + entry.offset, entry.length), entry.count);
        }
    }

  private:
    static constexpr std::uint32_t kEmptySlot = 0xFFFF'FFFF;

    struct Slot {
        std::uint32_t tag = 0;  // the high half of the word's hash
        std::uint32_t entry = kEmptySlot;
    };

    struct Entry {
        std::uint64_t hash = 0;
        std::size_t offset = 0;  // into bytes_
        std::size_t length = 0;
        std::int64_t count = 0;
    };

    // Appends a new entry for `word` and points the empty slot `slot` at it.
    void Insert(std::string_view word, std::int64_t count, std::uint64_t hash, std::size_t slot);
    // Doubles the slot table and places every entry again.
    void Grow();

    std::vector<Slot> slots_;
    std::size_t slot_mask_ = 0;
    std::vector<Entry> entries_;
    std::string bytes_;
};

}  // namespace conveyor::analysis
