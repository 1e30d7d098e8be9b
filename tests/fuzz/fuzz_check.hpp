#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace conveyor::fuzz {

// Stops the run with a message when an invariant does not hold, so that
// libFuzzer records the input as a crash in every build type (assert()
// would vanish under NDEBUG).
inline void Require(bool condition, std::string_view invariant) {
    if (!condition) {
        std::fprintf(stderr, "invariant failed: %.*s\n", static_cast<int>(invariant.size()),
                     invariant.data());
        std::abort();
    }
}

}  // namespace conveyor::fuzz
