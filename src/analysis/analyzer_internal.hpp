#pragma once

#include <string_view>

#include "analysis/analyzer.hpp"

// Internal to conveyor_analysis, its tests and its benchmark.

namespace conveyor::analysis {

// Analyses like Analyze, with the same contract and result, but segments the
// whole text with ICU's break iterator and never takes the ASCII fast path.
// Tests compare the fast path with it, and the benchmark measures it as the
// baseline.
AnalysisResult AnalyzeWithIcuOnly(std::string_view text, const AnalysisOptions& options);

}  // namespace conveyor::analysis
