#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "analysis/word_counter.hpp"

// The ASCII fast path of the analyzer: word segmentation and case folding of
// ASCII text, written out by hand to match ICU 72's root word break iterator
// and NFKC_Casefold. Internal to conveyor_analysis and its tests.
//
// On ASCII, ICU 72's root word rules are those of UAX #29 with '@' added to
// the letters, and reduce to these classes:
//   letters     A-Z a-z @            (ALetter)
//   digits      0-9                  (Numeric)
//   underscore  _                    (ExtendNumLet)
//   mid         . '                  (MidNumLet, Single_Quote)
//   mid number  , ;                  (MidNum)
//   separators  every other byte below 0x80, ':' included: ICU's root rules
//               take the colon out of MidLetter
// A word is a run of letters, digits and underscores, which may also hold
// a mid character between two letters, or a mid or mid-number character
// between two digits. Such a run is a word when it has a letter or a digit,
// or when it is two or more underscores long. A lone '_' is not a word.

namespace conveyor::analysis {

// Returns the position of the first byte at or after `from` that is 0x80 or
// above, or text.size() when there is none.
std::size_t FindNonAscii(std::string_view text, std::size_t from);

// Returns true when `position` is a safe split: 0 < position < text.size(),
// text[position - 1] is an ASCII separator and text[position] is an ASCII
// letter, digit or underscore. ICU breaks words there, and no rule looks
// across an ASCII separator, so ICU segments the text before and the text
// after such a split exactly as it segments them inside the whole text.
bool IsSafeSplit(std::string_view text, std::size_t position);

// Returns the last safe split in (from, to], or `from` when there is none.
// Precondition: to < text.size().
std::size_t LastSafeSplit(std::string_view text, std::size_t from, std::size_t to);

// Returns the first safe split after `from`, or text.size() when there is
// none.
std::size_t NextSafeSplit(std::string_view text, std::size_t from);

// Finds the words of `text` as ICU 72's root word break iterator does, folds
// them as NFKC_Casefold does (A-Z to a-z), adds each to `counter` and returns
// the number of words. Precondition: every byte of `text` is below 0x80, and
// the text is a whole text or lies between safe splits of one.
std::int64_t CountAsciiWords(std::string_view text, WordCounter& counter);

}  // namespace conveyor::analysis
