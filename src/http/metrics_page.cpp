#include "http/metrics_page.hpp"

#include <algorithm>

#include "core/blocking.hpp"
#include "core/log.hpp"

namespace conveyor::http {

namespace {

constexpr std::string_view kMethodNames[] = {"GET", "HEAD", "POST", "OTHER"};
constexpr TaskStatus kStatuses[] = {TaskStatus::kPending, TaskStatus::kProcessing,
                                    TaskStatus::kCompleted, TaskStatus::kFailed,
                                    TaskStatus::kCancelled};

}  // namespace

RequestMetrics::RequestMetrics() : requests_(kRouteCount * kMethodCount) {
    for (int i = 0; i < kRouteCount * kMethodCount; ++i) {
        latencies_.emplace_back(metrics::kLatencyBounds);
    }
}

RequestMetrics::~RequestMetrics() {
    for (std::atomic<StatusCounts*>& counts : requests_) {
        delete counts.load(std::memory_order_acquire);
    }
}

RequestMetrics::StatusCounts& RequestMetrics::CountsOf(int series) {
    std::atomic<StatusCounts*>& slot = requests_[static_cast<std::size_t>(series)];
    StatusCounts* counts = slot.load(std::memory_order_acquire);
    if (counts != nullptr) {
        return *counts;
    }
    // Two threads may allocate at once; the first to publish wins and the
    // other frees its copy.
    auto fresh = std::make_unique<StatusCounts>();
    if (slot.compare_exchange_strong(counts, fresh.get(), std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        return *fresh.release();
    }
    return *counts;
}

int RequestMetrics::MethodIndex(std::string_view method) {
    if (method == "GET") {
        return 0;
    }
    if (method == "HEAD") {
        return 1;
    }
    if (method == "POST") {
        return 2;
    }
    return 3;
}

void RequestMetrics::Record(Route route, std::string_view method, int status, double seconds) {
    const int series = static_cast<int>(route) * kMethodCount + MethodIndex(method);
    const int status_index =
        std::clamp(status, kFirstStatus, kFirstStatus + kStatusCount - 1) - kFirstStatus;
    CountsOf(series).by_status[status_index].Add();
    latencies_[static_cast<std::size_t>(series)].Observe(seconds);
}

void RequestMetrics::Write(metrics::ExpositionWriter& writer) const {
    writer.Family("conveyor_http_requests_total", "counter",
                  "HTTP requests answered, by route template, method and status code.");
    for (int route = 0; route < kRouteCount; ++route) {
        const std::string_view route_name = RouteName(static_cast<Route>(route));
        for (int method = 0; method < kMethodCount; ++method) {
            const int series = route * kMethodCount + method;
            const StatusCounts* counts =
                requests_[static_cast<std::size_t>(series)].load(std::memory_order_acquire);
            if (counts == nullptr) {
                continue;
            }
            for (int status = 0; status < kStatusCount; ++status) {
                const std::uint64_t count = counts->by_status[status].Value();
                if (count == 0) {
                    continue;
                }
                const std::string code = std::to_string(kFirstStatus + status);
                writer.Sample(
                    "conveyor_http_requests_total",
                    {{"route", route_name}, {"method", kMethodNames[method]}, {"status", code}},
                    count);
            }
        }
    }

    writer.Family("conveyor_http_request_duration_seconds", "histogram",
                  "Time from a parsed request to its response being ready, by route template "
                  "and method.");
    for (int route = 0; route < kRouteCount; ++route) {
        const std::string_view route_name = RouteName(static_cast<Route>(route));
        for (int method = 0; method < kMethodCount; ++method) {
            const metrics::Histogram& histogram =
                latencies_[static_cast<std::size_t>(route * kMethodCount + method)];
            const metrics::Histogram::Snapshot snapshot = histogram.Read();
            if (snapshot.count == 0) {
                continue;
            }
            writer.HistogramSamples("conveyor_http_request_duration_seconds",
                                    {{"route", route_name}, {"method", kMethodNames[method]}},
                                    histogram.bounds(), snapshot);
        }
    }
}

RequestMetrics& ProcessRequestMetrics() {
    static RequestMetrics request_metrics;
    return request_metrics;
}

boost::asio::awaitable<std::optional<TaskStats>> TaskStatsCache::Get(
    TaskStore& store, boost::asio::thread_pool& db_pool) {
    {
        std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        if (reading_ || (stats_ && now - read_at_ < max_age_)) {
            co_return stats_;
        }
        reading_ = true;
    }
    Result<TaskStats> read = co_await RunBlocking(db_pool, [&store] { return store.Stats(); });
    std::lock_guard lock(mutex_);
    reading_ = false;
    if (read.ok()) {
        stats_ = *read;
        read_at_ = std::chrono::steady_clock::now();
    } else {
        log::Warn("metrics", "reading the task counts failed; serving the last ones",
                  {{"error", read.status().message()}});
    }
    co_return stats_;
}

namespace {

void WriteTaskStats(metrics::ExpositionWriter& writer, const TaskStats& stats, UnixMillis now) {
    writer.Family("conveyor_tasks", "gauge",
                  "Tasks in the database by state, across every process sharing it.");
    for (const TaskStatus status : kStatuses) {
        writer.Sample("conveyor_tasks", {{"state", ToString(status)}},
                      stats.by_status[static_cast<std::size_t>(status)]);
    }
    writer.Family("conveyor_queue_depth", "gauge",
                  "PENDING tasks, those waiting out a retry back-off included.");
    writer.Sample("conveyor_queue_depth", {},
                  stats.by_status[static_cast<std::size_t>(TaskStatus::kPending)]);
    double age_seconds = 0;
    if (stats.earliest_pending_eligible_at && *stats.earliest_pending_eligible_at < now) {
        age_seconds = static_cast<double>(now - *stats.earliest_pending_eligible_at) / 1000.0;
    }
    writer.Family("conveyor_oldest_pending_age_seconds", "gauge",
                  "How long the oldest eligible PENDING task has been eligible; 0 when none is.");
    writer.Sample("conveyor_oldest_pending_age_seconds", {}, age_seconds);
}

void WriteCounter(metrics::ExpositionWriter& writer, std::string_view name, std::string_view help,
                  const metrics::Counter& counter) {
    writer.Family(name, "counter", help);
    writer.Sample(name, {}, counter.Value());
}

void WriteGauge(metrics::ExpositionWriter& writer, std::string_view name, std::string_view help,
                const metrics::Gauge& gauge) {
    writer.Family(name, "gauge", help);
    writer.Sample(name, {}, gauge.Value());
}

void WriteServiceCounters(metrics::ExpositionWriter& writer) {
    const metrics::ServiceCounters& counters = metrics::Service();
    WriteCounter(writer, "conveyor_tasks_created_total",
                 "Submissions this process stored as new tasks.", counters.tasks_created);
    WriteCounter(writer, "conveyor_task_attempts_started_total",
                 "Attempts this process's workers started.", counters.attempts_started);
    WriteCounter(writer, "conveyor_task_attempts_completed_total",
                 "Attempts this process's workers recorded as COMPLETED.",
                 counters.attempts_completed);
    WriteCounter(writer, "conveyor_task_retries_scheduled_total",
                 "Failed attempts this process sent back to PENDING with a back-off.",
                 counters.retries_scheduled);
    WriteCounter(writer, "conveyor_task_lease_expiries_total",
                 "Expired leases this process's reaper took back, requeued or failed.",
                 counters.leases_reaped);
    WriteCounter(writer, "conveyor_tasks_dead_lettered_total",
                 "Tasks this process moved to FAILED with no attempt left to run.",
                 counters.dead_lettered);
    WriteGauge(writer, "conveyor_worker_slots_busy", "Tasks this process's workers hold now.",
               counters.worker_slots_busy);
    WriteGauge(writer, "conveyor_worker_slots",
               "Tasks this process's workers may hold at once (--concurrency); 0 without workers.",
               counters.worker_slots);
    WriteGauge(writer, "conveyor_db_calls_in_flight",
               "Database calls running now, on the database pool and the group-commit threads.",
               counters.db_calls_in_flight);
    WriteGauge(writer, "conveyor_db_pool_threads", "Threads of the database pool.",
               counters.db_pool_threads);
    WriteGauge(writer, "conveyor_http_connections_open", "HTTP connections open now.",
               counters.http_connections_open);
    WriteCounter(writer, "conveyor_http_connections_evicted_total",
                 "Connections waiting for a request that were closed at --max-connections to "
                 "let a new connection in.",
                 counters.http_connections_evicted);
    writer.Family("conveyor_db_errors_total", "counter",
                  "Database calls that failed, by kind: unavailable (cannot reach the database) "
                  "or internal.");
    writer.Sample("conveyor_db_errors_total", {{"kind", "unavailable"}},
                  counters.db_errors_unavailable.Value());
    writer.Sample("conveyor_db_errors_total", {{"kind", "internal"}},
                  counters.db_errors_internal.Value());
}

}  // namespace

std::string RenderMetrics(const std::optional<TaskStats>& stats, UnixMillis now) {
    metrics::ExpositionWriter writer;
    ProcessRequestMetrics().Write(writer);
    WriteServiceCounters(writer);
    if (stats) {
        WriteTaskStats(writer, *stats, now);
    }
    return writer.Take();
}

}  // namespace conveyor::http
