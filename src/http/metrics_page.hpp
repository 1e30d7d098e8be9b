#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.hpp"
#include "http/router.hpp"
#include "storage/task_store.hpp"

namespace conveyor::http {

// Counts of HTTP requests by route, method and status, and latency
// histograms by route and method. Record takes no lock: each count is an
// atomic. The 500 status counts of a route and method are allocated when
// its first request is recorded, so an idle process does not hold them.
// Thread-safe.
class RequestMetrics {
  public:
    RequestMetrics();
    ~RequestMetrics();
    RequestMetrics(const RequestMetrics&) = delete;
    RequestMetrics& operator=(const RequestMetrics&) = delete;

    // Records one request whose response is ready. `status` outside 100 to 599 is counted
    // as 599.
    void Record(Route route, std::string_view method, int status, double seconds);

    // Appends the two families to `writer`, leaving out series never seen.
    void Write(metrics::ExpositionWriter& writer) const;

  private:
    static constexpr int kMethodCount = 4;  // GET, HEAD, POST and any other
    static constexpr int kFirstStatus = 100;
    static constexpr int kStatusCount = 500;

    static int MethodIndex(std::string_view method);

    struct StatusCounts {
        metrics::Counter by_status[kStatusCount];  // [status - 100]
    };

    // Returns the status counts of `series`, allocating them on first use.
    StatusCounts& CountsOf(int series);

    std::vector<std::atomic<StatusCounts*>> requests_;  // [route][method]; null until used
    std::deque<metrics::Histogram> latencies_;          // [route][method]; a deque needs no move
};

// Returns the request metrics of this process.
RequestMetrics& ProcessRequestMetrics();

// The task counts of the store, read at most once per `max_age`, so that a
// scrape costs at most one database read per interval however often
// scrapes arrive. Thread-safe.
class TaskStatsCache {
  public:
    explicit TaskStatsCache(std::chrono::milliseconds max_age) : max_age_(max_age) {}

    // Returns the cached counts, reading them first on `db_pool` when they
    // are older than max_age and no other caller is reading them. Returns
    // the last good counts when the read fails, and nullopt when there
    // never were any.
    boost::asio::awaitable<std::optional<TaskStats>> Get(TaskStore& store,
                                                         boost::asio::thread_pool& db_pool);

  private:
    const std::chrono::milliseconds max_age_;
    std::mutex mutex_;
    std::optional<TaskStats> stats_;                   // guarded by mutex_
    std::chrono::steady_clock::time_point read_at_{};  // guarded by mutex_
    bool reading_ = false;                             // guarded by mutex_
};

// Renders the /metrics body: this process's counters and request metrics,
// and, when `stats` is set, the store's task counts as of `now`.
std::string RenderMetrics(const std::optional<TaskStats>& stats, UnixMillis now);

}  // namespace conveyor::http
