#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/duration.hpp"
#include "core/status.hpp"
#include "storage/task_store.hpp"

namespace conveyor::http {

// Bounds the PENDING tasks of each tenant without counting them on every
// submission. Each tenant's count comes from TaskStore::CountPending, which
// reads at most `max_pending` index entries, and is reused for
// `refresh_interval`; in between, this process adds its own admitted
// submissions to it. So the bound can be passed by the submissions that
// other processes admit within one interval, and by those admitted while a
// count is running; and a tenant whose tasks were claimed or cancelled can
// be rejected until the next count. Thread-safe.
class PendingLimit {
  public:
    PendingLimit(TaskStore& store, boost::asio::thread_pool& db_pool, std::int64_t max_pending,
                 Millis refresh_interval);

    // Returns true and counts one more PENDING task for `tenant` when it is
    // under the bound, or false when the bound is reached. Returns the
    // store's error when the count fails. The count runs on `db_pool`.
    boost::asio::awaitable<Result<bool>> Admit(const std::string& tenant);

  private:
    using Clock = std::chrono::steady_clock;

    struct Entry {
        std::int64_t pending = 0;
        std::optional<Clock::time_point> counted_at;
        bool counting = false;
    };

    // Decides from the cached count when it is fresh, or while another
    // submission is counting. Otherwise marks the entry as counting and
    // returns nullopt: the caller must count.
    std::optional<bool> AdmitCached(const std::string& tenant, Clock::time_point now);

    // Stores a finished count and decides with it.
    bool AdmitCounted(const std::string& tenant, std::int64_t pending, Clock::time_point now);

    // Clears the counting mark after a failed count.
    void AbandonCount(const std::string& tenant);

    TaskStore& store_;
    boost::asio::thread_pool& db_pool_;
    const std::int64_t max_pending_;
    const Millis refresh_interval_;
    std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;  // guarded by mutex_
};

}  // namespace conveyor::http
