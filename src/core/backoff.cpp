#include "core/backoff.hpp"

#include <algorithm>
#include <random>

namespace conveyor {

Millis MaxBackoff(int attempts, Millis base, Millis cap) {
    if (attempts < 1 || base <= Millis{0}) {
        return std::min(base, cap);
    }
    // Doubling stops before it could pass the cap, so it never overflows,
    // even for a cap near Millis::max().
    Millis bound = base;
    for (int i = 1; i < attempts && bound < cap; ++i) {
        bound = bound > cap / 2 ? cap : bound * 2;
    }
    return std::min(bound, cap);
}

Millis JitteredBackoff(int attempts, Millis base, Millis cap) {
    thread_local std::mt19937_64 generator{std::random_device{}()};
    const Millis bound = MaxBackoff(attempts, base, cap);
    if (bound <= Millis{0}) {
        return Millis{0};
    }
    std::uniform_int_distribution<Millis::rep> pick(0, bound.count());
    return Millis{pick(generator)};
}

}  // namespace conveyor
