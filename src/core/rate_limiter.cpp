#include "core/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace conveyor {

TokenBucket::TokenBucket(double rate, std::int64_t burst, SteadyTime now)
    : interval_(std::max<std::int64_t>(1, std::llround(1e9 / rate))),
      tolerance_(interval_ * (std::max<std::int64_t>(1, burst) - 1)),
      full_at_(now) {}

Millis TokenBucket::TryTake(SteadyTime now) {
    // The bucket contains at least one token once `now` is within `tolerance_`
    // of the time it would be full.
    const SteadyTime allowed_at = full_at_ - tolerance_;
    if (now < allowed_at) {
        return std::chrono::ceil<Millis>(allowed_at - now);
    }
    full_at_ = std::max(full_at_, now) + interval_;
    return Millis{0};
}

Millis RateLimiter::Admit(std::string_view tenant, SteadyTime now) {
    std::lock_guard lock(mutex_);
    auto found = buckets_.find(std::string(tenant));
    if (found == buckets_.end()) {
        found = buckets_.emplace(std::string(tenant), TokenBucket(rate_, burst_, now)).first;
    }
    return found->second.TryTake(now);
}

std::string FormatRetryAfter(Millis wait) {
    const std::int64_t seconds = (wait.count() + 999) / 1000;
    return std::to_string(std::max<std::int64_t>(1, seconds));
}

}  // namespace conveyor
