#pragma once

#include "core/duration.hpp"

namespace conveyor {

// Exponential back-off with full jitter: the largest possible delay before
// attempt `attempts + 1` is min(cap, base * 2^(attempts - 1)).
Millis MaxBackoff(int attempts, Millis base, Millis cap);

// Draws a delay uniformly from [0, MaxBackoff(attempts, base, cap)].
// Thread-safe: each thread has its own generator.
Millis JitteredBackoff(int attempts, Millis base, Millis cap);

}  // namespace conveyor
