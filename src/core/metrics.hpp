#pragma once

// Process-wide counters and the Prometheus text exposition format (version
// 0.0.4). Recording a value is one relaxed atomic operation, so the request
// and task paths take no lock.

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor::metrics {

// A value that only goes up. Thread-safe.
class Counter {
  public:
    void Add(std::uint64_t amount = 1) { value_.fetch_add(amount, std::memory_order_relaxed); }
    std::uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::uint64_t> value_{0};
};

// A value that goes up and down. Thread-safe.
class Gauge {
  public:
    void Add(std::int64_t amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
    void Set(std::int64_t value) { value_.store(value, std::memory_order_relaxed); }
    std::int64_t Value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::int64_t> value_{0};
};

// Counts observations into buckets with fixed upper bounds, as a Prometheus
// histogram. Thread-safe; Observe is a few relaxed atomic operations.
class Histogram {
  public:
    // `bounds` are the inclusive upper bounds in increasing order; a last
    // bucket, +Inf, is implied.
    explicit Histogram(std::span<const double> bounds);

    void Observe(double value);

    // A copy of the counts. `cumulative[i]` counts the observations at most
    // bounds()[i]; `count` counts all of them, the +Inf bucket.
    struct Snapshot {
        std::vector<std::uint64_t> cumulative;
        std::uint64_t count = 0;
        double sum = 0;
    };
    Snapshot Read() const;

    std::span<const double> bounds() const { return bounds_; }

  private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1
    std::atomic<double> sum_{0};
};

// Upper bounds, in seconds, of the request latency histograms: from 0.1 ms,
// the cost of a GET served from cache, to 60 s, the longest long poll.
inline constexpr double kLatencyBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                            1,      2.5,     5,      10,    30,     60};

struct Label {
    std::string_view name;
    std::string_view value;
};

// Writes the Prometheus text exposition format, version 0.0.4. Call Family
// once before the samples of each metric.
class ExpositionWriter {
  public:
    // Writes the # HELP and # TYPE lines; `type` is counter, gauge or
    // histogram.
    void Family(std::string_view name, std::string_view type, std::string_view help);

    void Sample(std::string_view name, std::initializer_list<Label> labels, double value);
    void Sample(std::string_view name, std::initializer_list<Label> labels, std::int64_t value);
    void Sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value);

    // Writes the _bucket, _sum and _count samples of one histogram; each
    // bucket line carries `labels` and then le.
    void HistogramSamples(std::string_view name, std::initializer_list<Label> labels,
                          std::span<const double> bounds, const Histogram::Snapshot& snapshot);

    const std::string& text() const { return text_; }
    std::string Take() { return std::move(text_); }

  private:
    void BeginSample(std::string_view name, std::span<const Label> labels,
                     std::string_view extra_name = {}, std::string_view extra_value = {});

    std::string text_;
};

// Formats a sample value as the exposition format reads it: the shortest
// decimal form that reads back to the same double, or +Inf, -Inf, NaN.
std::string FormatValue(double value);

// Counters of what this process did. Every process has one set.
struct ServiceCounters {
    Counter tasks_created;       // submissions stored by this process's API
    Counter attempts_started;    // attempts that this process's workers began
    Counter attempts_completed;  // attempts recorded as COMPLETED
    Counter retries_scheduled;   // failed attempts sent back to PENDING with a back-off
    Counter leases_reaped;       // expired leases that this process's reaper took back
    Counter dead_lettered;       // tasks that became FAILED after their last attempt
    Gauge worker_slots_busy;     // tasks this process's workers hold
    Gauge worker_slots;          // --concurrency, or 0 without workers
    Gauge db_calls_in_flight;    // TaskStore calls running now
    Gauge db_pool_threads;       // threads of the database pool
    Counter db_errors_unavailable;
    Counter db_errors_internal;
    Gauge http_connections_open;       // HTTP connections open now
    Counter http_connections_evicted;  // closed at the cap to make room for a new one
};

// Returns the counters of this process.
ServiceCounters& Service();

}  // namespace conveyor::metrics
