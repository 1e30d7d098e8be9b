#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/duration.hpp"

namespace conveyor {

using SteadyTime = std::chrono::steady_clock::time_point;

// A token bucket that holds up to `burst` tokens, starts full and gains
// `rate` tokens per second; each admitted request takes one. It keeps the
// time at which the bucket would be full again rather than a token count
// (the virtual-scheduling form of the same algorithm), so its arithmetic is
// exact in nanoseconds. Not thread-safe.
class TokenBucket {
  public:
    // `rate` must be positive and `burst` at least 1.
    TokenBucket(double rate, std::int64_t burst, SteadyTime now);

    // Takes one token at `now` when one is available and returns 0.
    // Otherwise takes nothing and returns how long until a token is
    // available, rounded up to the next millisecond.
    Millis TryTake(SteadyTime now);

  private:
    std::chrono::nanoseconds interval_;   // time to gain one token
    std::chrono::nanoseconds tolerance_;  // (burst - 1) intervals
    SteadyTime full_at_;                  // when the bucket is full again, before this request
};

// One token bucket per tenant. Thread-safe. The map grows by one bucket per
// tenant seen, which the API keys file bounds.
class RateLimiter {
  public:
    // `rate` must be positive and `burst` at least 1.
    RateLimiter(double rate, std::int64_t burst) : rate_(rate), burst_(burst) {}

    // Returns 0 when `tenant` may send a request at `now`, or how long it
    // must wait before its next request is admitted.
    Millis Admit(std::string_view tenant, SteadyTime now);

  private:
    double rate_;
    std::int64_t burst_;
    std::mutex mutex_;
    std::unordered_map<std::string, TokenBucket> buckets_;  // guarded by mutex_
};

// Formats a wait as the whole seconds of a Retry-After header, rounded up
// and at least 1.
std::string FormatRetryAfter(Millis wait);

}  // namespace conveyor
