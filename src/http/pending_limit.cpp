#include "http/pending_limit.hpp"

#include "core/blocking.hpp"

namespace conveyor::http {

namespace asio = boost::asio;

PendingLimit::PendingLimit(TaskStore& store, asio::thread_pool& db_pool, std::int64_t max_pending,
                           Millis refresh_interval)
    : store_(store),
      db_pool_(db_pool),
      max_pending_(max_pending),
      refresh_interval_(refresh_interval) {}

asio::awaitable<Result<bool>> PendingLimit::Admit(const std::string& tenant) {
    if (const std::optional<bool> cached = AdmitCached(tenant, Clock::now())) {
        co_return *cached;
    }
    const std::int64_t limit = max_pending_;
    Result<std::int64_t> counted = co_await RunBlocking(
        db_pool_, [this, &tenant, limit] { return store_.CountPending(tenant, limit); });
    if (!counted.ok()) {
        AbandonCount(tenant);
        co_return counted.status();
    }
    co_return AdmitCounted(tenant, *counted, Clock::now());
}

std::optional<bool> PendingLimit::AdmitCached(const std::string& tenant, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[tenant];
    const bool fresh = entry.counted_at && now - *entry.counted_at < refresh_interval_;
    if (!fresh && !entry.counting) {
        entry.counting = true;
        return std::nullopt;
    }
    if (entry.pending >= max_pending_) {
        return false;
    }
    ++entry.pending;
    return true;
}

bool PendingLimit::AdmitCounted(const std::string& tenant, std::int64_t pending,
                                Clock::time_point now) {
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[tenant];
    entry.counting = false;
    entry.counted_at = now;
    entry.pending = pending;
    if (entry.pending >= max_pending_) {
        return false;
    }
    ++entry.pending;
    return true;
}

void PendingLimit::AbandonCount(const std::string& tenant) {
    std::lock_guard lock(mutex_);
    entries_[tenant].counting = false;
}

}  // namespace conveyor::http
