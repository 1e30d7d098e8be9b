#pragma once

#include <span>
#include <string_view>

// The stop-word lists of data/stopwords/, embedded at build time by
// embed_stop_words.cmake. Internal to conveyor_analysis.

namespace conveyor::analysis {

// Returns the language of each embedded list, in alphabetical order.
std::span<const std::string_view> StopWordListNames();

// Returns the lists' raw UTF-8 contents, one entry a line, in the order of
// StopWordListNames(). The data is static and immutable.
std::span<const std::string_view> StopWordListTexts();

}  // namespace conveyor::analysis
