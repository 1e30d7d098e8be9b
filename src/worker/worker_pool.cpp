#include "worker/worker_pool.hpp"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <random>
#include <unordered_set>

#include "core/backoff.hpp"
#include "core/blocking.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/trace_context.hpp"
#include "tasks/task_type.hpp"

namespace conveyor {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

// The reason a running task stopped before recording its own outcome.
enum class StopReason {
    kNone,
    kCancelled,  // a client cancelled it
    kLost,       // its lease is no longer ours: cancelled elsewhere, or expired and reclaimed
    kHandBack,   // shutdown grace ran out
};

struct RunningTask {
    Lease lease;
    std::shared_ptr<asio::steady_timer> timer;
    SteadyClock::time_point claimed_at;
    StopReason stop = StopReason::kNone;
};

constexpr int kWriteRetries = 5;
constexpr Millis kMaxErrorBackoff{5000};
constexpr int kReapBatch = 500;
// Texts up to this size are analysed on the worker's own strand: at the
// slowest (non-Latin text through ICU, about 40 MB/s) that takes about
// 100 us, less than handing the work to the CPU pool and back.
constexpr std::size_t kInlineWorkBytes = 4096;

// Counts a recorded outcome in the service counters.
void CountOutcome(const RunOutcome& outcome, bool retry) {
    metrics::ServiceCounters& counters = metrics::Service();
    if (outcome.result_json) {
        counters.attempts_completed.Add();
    } else if (retry) {
        counters.retries_scheduled.Add();
    } else {
        counters.dead_lettered.Add();
    }
}

// Returns the trace of the submission that created `task`, or empty fields
// when it came without a valid traceparent. The views point into `task`.
TraceParent TraceOf(const Task& task) {
    if (task.traceparent) {
        if (const auto parsed = ParseTraceParent(*task.traceparent)) {
            return *parsed;
        }
    }
    return {};
}

}  // namespace

std::string MakeOwnerId() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) {
        host[0] = '\0';
    }
    return std::string(host) + ":" + std::to_string(getpid()) + ":" + RandomHex(6);
}

struct WorkerPool::Impl : std::enable_shared_from_this<WorkerPool::Impl> {
    Impl(asio::any_io_executor executor, asio::thread_pool& db, asio::thread_pool& cpu,
         TaskStore& task_store, CompleteCommit& completions, Options pool_options,
         std::function<void(const std::string&)> finished)
        : strand(asio::make_strand(executor)),
          db_pool(db),
          cpu_pool(cpu),
          store(task_store),
          complete_commit(completions),
          options(pool_options),
          on_finished(std::move(finished)),
          owner(MakeOwnerId()),
          wake_timer(strand),
          drained_timer(strand),
          random(std::random_device{}()) {}

    asio::awaitable<void> ClaimLoop();
    asio::awaitable<void> LeaseLoop();
    asio::awaitable<void> ReapLoop();
    asio::awaitable<void> PruneLoop();
    asio::awaitable<void> RunTask(std::shared_ptr<RunningTask> running, Task task);
    asio::awaitable<void> Record(const std::shared_ptr<RunningTask>& running, const Task& task,
                                 const RunOutcome& outcome);
    asio::awaitable<void> ShutdownOnStrand(Millis grace);
    asio::awaitable<void> Pause(Millis duration);
    Millis PickDelay(const FaultInjection& fault);
    void Stop(const std::string& task_id, StopReason reason);
    void Finish(const std::string& task_id, const RunningTask* finished);

    asio::strand<asio::any_io_executor> strand;
    asio::thread_pool& db_pool;
    asio::thread_pool& cpu_pool;
    TaskStore& store;
    CompleteCommit& complete_commit;
    Options options;
    std::function<void(const std::string&)> on_finished;
    std::string owner;

    std::unordered_map<std::string, std::shared_ptr<RunningTask>> running;
    asio::steady_timer wake_timer;
    asio::steady_timer drained_timer;
    bool wake_pending = false;
    bool stopping = false;  // no more claims or reaping
    bool stopped = false;   // every task recorded or handed back; lease loop ends
    std::mt19937_64 random;
};

WorkerPool::WorkerPool(asio::any_io_executor executor, asio::thread_pool& db_pool,
                       asio::thread_pool& cpu_pool, TaskStore& store,
                       CompleteCommit& complete_commit, Options options,
                       std::function<void(const std::string&)> on_finished)
    : impl_(std::make_shared<Impl>(std::move(executor), db_pool, cpu_pool, store, complete_commit,
                                   options, std::move(on_finished))) {}

WorkerPool::~WorkerPool() = default;

const std::string& WorkerPool::owner() const {
    return impl_->owner;
}

void WorkerPool::Start() {
    metrics::Service().worker_slots.Set(impl_->options.concurrency);
    log::Info("worker", "worker pool started",
              {{"owner", impl_->owner}, {"concurrency", impl_->options.concurrency}});
    asio::co_spawn(impl_->strand, impl_->ClaimLoop(), asio::detached);
    asio::co_spawn(impl_->strand, impl_->LeaseLoop(), asio::detached);
    asio::co_spawn(impl_->strand, impl_->ReapLoop(), asio::detached);
    asio::co_spawn(impl_->strand, impl_->PruneLoop(), asio::detached);
}

void WorkerPool::Wake() {
    asio::post(impl_->strand, [impl = impl_] {
        impl->wake_pending = true;
        impl->wake_timer.cancel();
    });
}

void WorkerPool::CancelLocal(const std::string& task_id) {
    asio::post(impl_->strand,
               [impl = impl_, task_id] { impl->Stop(task_id, StopReason::kCancelled); });
}

asio::awaitable<void> WorkerPool::Shutdown(Millis grace) {
    co_await asio::co_spawn(impl_->strand, impl_->ShutdownOnStrand(grace), asio::use_awaitable);
}

asio::awaitable<void> WorkerPool::Impl::Pause(Millis duration) {
    asio::steady_timer timer(strand, duration);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

void WorkerPool::Impl::Stop(const std::string& task_id, StopReason reason) {
    const auto found = running.find(task_id);
    if (found == running.end() || found->second->stop != StopReason::kNone) {
        return;
    }
    found->second->stop = reason;
    found->second->timer->cancel();
}

void WorkerPool::Impl::Finish(const std::string& task_id, const RunningTask* finished) {
    // A redriven task can be claimed again while its previous attempt winds
    // down, so only the entry of this attempt is removed.
    const auto found = running.find(task_id);
    if (found != running.end() && found->second.get() == finished) {
        running.erase(found);
    }
    metrics::Service().worker_slots_busy.Set(static_cast<std::int64_t>(running.size()));
    wake_pending = true;
    wake_timer.cancel();
    if (running.empty()) {
        drained_timer.cancel();
    }
}

Millis WorkerPool::Impl::PickDelay(const FaultInjection& fault) {
    if (fault.delay_ms) {
        return Millis{*fault.delay_ms};
    }
    const auto [min, max] = options.simulated_delay;
    if (min >= max) {
        return min;
    }
    std::uniform_int_distribution<Millis::rep> pick(min.count(), max.count());
    return Millis{pick(random)};
}

asio::awaitable<void> WorkerPool::Impl::ClaimLoop() {
    auto self = shared_from_this();
    Millis error_backoff{100};
    while (!stopping) {
        const int free_slots = options.concurrency - static_cast<int>(running.size());
        if (free_slots > 0) {
            const int wanted = std::min(free_slots, options.claim_batch);
            auto claimed = co_await RunBlocking(db_pool, [this, wanted] {
                return store.Claim(owner, wanted, NowMillis(), options.lease);
            });
            if (!claimed.ok()) {
                log::Warn("worker", "claim failed; backing off",
                          {{"error", claimed.status().message()},
                           {"backoff_ms", static_cast<std::int64_t>(error_backoff.count())}});
                co_await Pause(error_backoff);
                error_backoff = std::min(error_backoff * 2, kMaxErrorBackoff);
                continue;
            }
            error_backoff = Millis{100};
            for (ClaimedTask& item : *claimed) {
                auto entry = std::make_shared<RunningTask>();
                entry->lease = item.lease;
                entry->timer = std::make_shared<asio::steady_timer>(strand);
                entry->claimed_at = SteadyClock::now();
                running[item.lease.task_id] = entry;
                asio::co_spawn(strand, RunTask(entry, std::move(item.task)), asio::detached);
            }
            metrics::Service().worker_slots_busy.Set(static_cast<std::int64_t>(running.size()));
            if (static_cast<int>(claimed->size()) == wanted) {
                continue;  // there may be more eligible tasks right now
            }
        }
        if (wake_pending) {
            wake_pending = false;
            continue;
        }
        wake_timer.expires_after(free_slots > 0 ? options.idle_poll : Millis{1000});
        co_await wake_timer.async_wait(asio::as_tuple(asio::use_awaitable));
        wake_pending = false;
    }
}

asio::awaitable<void> WorkerPool::Impl::LeaseLoop() {
    auto self = shared_from_this();
    const Millis renew_every = options.lease / 3;
    auto last_renewal = SteadyClock::now();
    while (!stopped) {
        co_await Pause(options.cancel_poll);
        if (running.empty()) {
            continue;
        }
        const auto asked_at = SteadyClock::now();
        const bool renew = asked_at - last_renewal >= renew_every;
        auto held = co_await RunBlocking(db_pool, [this, renew] {
            return renew ? store.RenewLeases(owner, NowMillis(), options.lease)
                         : store.HeldLeases(owner);
        });
        if (!held.ok()) {
            log::Warn("worker", "lease check failed", {{"error", held.status().message()}});
            continue;
        }
        if (renew) {
            last_renewal = asked_at;
        }
        const std::unordered_set<std::string> still_held(held->begin(), held->end());
        std::vector<std::string> lost;
        for (const auto& [task_id, entry] : running) {
            if (entry->claimed_at < asked_at && !still_held.contains(task_id)) {
                lost.push_back(task_id);
            }
        }
        for (const std::string& task_id : lost) {
            log::Info("worker", "task no longer leased here; stopping it",
                      {{"task_id", task_id}, {"owner", owner}});
            Stop(task_id, StopReason::kLost);
        }
    }
}

asio::awaitable<void> WorkerPool::Impl::ReapLoop() {
    auto self = shared_from_this();
    while (!stopping) {
        co_await Pause(options.reap_interval);
        if (stopping) {
            break;
        }
        auto reaped = co_await RunBlocking(db_pool, [this] {
            return store.ReapExpired(NowMillis(), kReapBatch, [this](int attempts) {
                return JitteredBackoff(attempts, options.retry_base, options.retry_cap);
            });
        });
        if (!reaped.ok()) {
            log::Warn("worker", "reaping expired leases failed",
                      {{"error", reaped.status().message()}});
        } else {
            metrics::ServiceCounters& counters = metrics::Service();
            counters.leases_reaped.Add(reaped->requeued_ids.size() + reaped->failed_ids.size());
            counters.dead_lettered.Add(reaped->failed_ids.size());
            for (const std::string& task_id : reaped->requeued_ids) {
                log::Info("task", "lease expired; task requeued",
                          {{"task_id", task_id},
                           {"from", "PROCESSING"},
                           {"to", "PENDING"},
                           {"error_code", "worker_lost"}});
            }
            for (const std::string& task_id : reaped->failed_ids) {
                log::Info("task", "lease expired; task failed",
                          {{"task_id", task_id},
                           {"from", "PROCESSING"},
                           {"to", "FAILED"},
                           {"error_code", "worker_lost"}});
                if (on_finished) {
                    on_finished(task_id);
                }
            }
        }
    }
}

asio::awaitable<void> WorkerPool::Impl::PruneLoop() {
    auto self = shared_from_this();
    while (!stopping) {
        co_await Pause(options.prune_interval);
        // Small batches keep each write transaction short, so claims and
        // submissions never wait long behind a large delete.
        int deleted_total = 0;
        while (!stopping) {
            const UnixMillis cutoff = NowMillis() - options.retention.count();
            auto deleted = co_await RunBlocking(db_pool, [this, cutoff] {
                return store.PruneFinished(cutoff, options.prune_batch);
            });
            if (!deleted.ok()) {
                log::Warn("worker", "pruning finished tasks failed",
                          {{"error", deleted.status().message()}});
                break;
            }
            deleted_total += *deleted;
            if (*deleted < options.prune_batch) {
                break;
            }
        }
        if (deleted_total > 0) {
            log::Info("worker", "pruned finished tasks", {{"deleted", deleted_total}});
        }
    }
}

asio::awaitable<void> WorkerPool::Impl::RunTask(std::shared_ptr<RunningTask> running_task,
                                                Task task) {
    auto self = shared_from_this();
    const auto started = SteadyClock::now();
    const TraceParent trace = TraceOf(task);
    metrics::Service().attempts_started.Add();
    log::Info("task", "task started",
              {{"task_id", task.task_id},
               {"tenant", task.tenant},
               {"from", "PENDING"},
               {"to", "PROCESSING"},
               {"attempt", task.attempts},
               {"owner", owner},
               log::Field::IfPresent("trace_id", trace.trace_id),
               log::Field::IfPresent("parent_span_id", trace.parent_id)});

    RunOutcome outcome;
    boost::json::object params;
    try {
        params = boost::json::parse(task.params_json).as_object();
    } catch (const std::exception& error) {
        outcome.error = TaskError{"processing_error", "stored parameters are unreadable"};
    }
    const TaskType* type = FindTaskType(task.type);
    if (!outcome.error && type == nullptr) {
        outcome.error = TaskError{"processing_error", "unknown task type " + task.type};
    }
    const FaultInjection fault = ReadFaultInjection(params);

    if (!outcome.error) {
        const Millis delay = PickDelay(fault);
        if (running_task->stop == StopReason::kNone && delay > Millis{0}) {
            running_task->timer->expires_after(std::min(delay, options.task_timeout));
            co_await running_task->timer->async_wait(asio::as_tuple(asio::use_awaitable));
        }

        if (running_task->stop == StopReason::kNone) {
            if (delay >= options.task_timeout) {
                outcome.error = TaskError{"timeout", "the attempt ran past --task-timeout"};
                outcome.retryable = true;
            } else if (fault.fail_permanently) {
                outcome.error = TaskError{"invalid_input", "injected permanent failure"};
            } else if (task.attempts <= fault.fail_attempts) {
                outcome.error = TaskError{"injected_failure", "injected failure on attempt " +
                                                                  std::to_string(task.attempts)};
                outcome.retryable = true;
            } else {
                const auto work_params = WithoutFaultInjection(params);
                auto work = [type, &work_params, &task] {
                    try {
                        return type->Run(work_params, *task.text);
                    } catch (const std::exception& error) {
                        RunOutcome failed;
                        failed.error = TaskError{"processing_error", error.what()};
                        failed.retryable = true;
                        return failed;
                    }
                };
                // A small input costs less to process than two thread hops.
                if (task.text->size() <= kInlineWorkBytes) {
                    outcome = work();
                } else {
                    outcome = co_await RunBlocking(cpu_pool, work);
                }
                if (SteadyClock::now() - started > options.task_timeout) {
                    outcome = RunOutcome{};
                    outcome.error = TaskError{"timeout", "the attempt ran past --task-timeout"};
                    outcome.retryable = true;
                }
            }
        }
    }

    // An outcome reached just as the shutdown grace ran out is still ours to
    // record, because the lease is still valid.
    const bool has_outcome = outcome.result_json || outcome.error;
    if (running_task->stop == StopReason::kHandBack && has_outcome) {
        running_task->stop = StopReason::kNone;
    }
    switch (running_task->stop) {
        case StopReason::kNone:
            co_await Record(running_task, task, outcome);
            break;
        case StopReason::kHandBack: {
            auto handed = co_await RunBlocking(db_pool, [this, &running_task] {
                return store.HandBack(running_task->lease, NowMillis());
            });
            log::Info("task", "task handed back at shutdown",
                      {{"task_id", task.task_id},
                       {"tenant", task.tenant},
                       {"from", "PROCESSING"},
                       {"to", "PENDING"},
                       {"attempt", task.attempts},
                       {"applied", handed.ok() && *handed == FenceOutcome::kApplied ? 1 : 0},
                       log::Field::IfPresent("trace_id", trace.trace_id),
                       log::Field::IfPresent("parent_span_id", trace.parent_id)});
            break;
        }
        case StopReason::kCancelled:
        case StopReason::kLost: {
            // The fenced hand-back changes nothing when the task really was
            // cancelled or reclaimed. When a stale cancel hit a new attempt of
            // a redriven task, it returns the task to PENDING at once instead
            // of leaving it to lease expiry.
            auto handed = co_await RunBlocking(db_pool, [this, &running_task] {
                return store.HandBack(running_task->lease, NowMillis());
            });
            log::Info("task", "task attempt abandoned",
                      {{"task_id", task.task_id},
                       {"tenant", task.tenant},
                       {"attempt", task.attempts},
                       log::Field::IfPresent("trace_id", trace.trace_id),
                       {"reason",
                        running_task->stop == StopReason::kCancelled ? "cancelled" : "lease lost"},
                       {"handed_back", handed.ok() && *handed == FenceOutcome::kApplied ? 1 : 0}});
            break;
        }
    }
    Finish(task.task_id, running_task.get());
}

asio::awaitable<void> WorkerPool::Impl::Record(const std::shared_ptr<RunningTask>& running_task,
                                               const Task& task, const RunOutcome& outcome) {
    const Lease& lease = running_task->lease;
    const TraceParent trace = TraceOf(task);
    const bool retry =
        !outcome.result_json && outcome.retryable && lease.attempt < task.max_attempts;
    std::optional<UnixMillis> retry_at;
    if (retry) {
        retry_at = NowMillis() +
                   JitteredBackoff(lease.attempt, options.retry_base, options.retry_cap).count();
    }

    Millis pause{200};
    for (int attempt = 1; attempt <= kWriteRetries; ++attempt) {
        Result<FenceOutcome> written = FenceOutcome::kLost;
        if (outcome.result_json) {
            written = co_await AsyncGroupCommit(complete_commit,
                                                CompleteRequest{&lease, *outcome.result_json},
                                                CompleteCommit::kAnyLane);
        } else {
            written = co_await RunBlocking(db_pool, [this, &lease, &outcome, &retry_at] {
                return store.Fail(lease, *outcome.error, retry_at, NowMillis());
            });
        }
        if (written.ok()) {
            if (*written == FenceOutcome::kLost) {
                log::Info("task", "outcome discarded: the lease was lost",
                          {{"task_id", task.task_id},
                           {"tenant", task.tenant},
                           {"attempt", lease.attempt},
                           log::Field::IfPresent("trace_id", trace.trace_id),
                           log::Field::IfPresent("parent_span_id", trace.parent_id)});
                co_return;
            }
            CountOutcome(outcome, retry);
            if (outcome.result_json) {
                log::Info("task", "task completed",
                          {{"task_id", task.task_id},
                           {"tenant", task.tenant},
                           {"from", "PROCESSING"},
                           {"to", "COMPLETED"},
                           {"attempt", lease.attempt},
                           log::Field::IfPresent("trace_id", trace.trace_id),
                           log::Field::IfPresent("parent_span_id", trace.parent_id)});
            } else {
                log::Info("task", retry ? "task attempt failed; retry scheduled" : "task failed",
                          {{"task_id", task.task_id},
                           {"tenant", task.tenant},
                           {"from", "PROCESSING"},
                           {"to", retry ? "PENDING" : "FAILED"},
                           {"attempt", lease.attempt},
                           {"error_code", outcome.error->code},
                           {"error", outcome.error->message},
                           log::Field::IfPresent("trace_id", trace.trace_id),
                           log::Field::IfPresent("parent_span_id", trace.parent_id)});
            }
            if (!retry && on_finished) {
                on_finished(task.task_id);
            }
            co_return;
        }
        log::Warn("task", "recording the outcome failed",
                  {{"task_id", task.task_id},
                   {"try", attempt},
                   {"error", written.status().message()},
                   log::Field::IfPresent("trace_id", trace.trace_id)});
        co_await Pause(pause);
        pause *= 2;
    }
    // The lease will expire and the reaper will retry the task elsewhere.
    log::Error("task", "giving up on recording the outcome; the lease will expire",
               {{"task_id", task.task_id}, log::Field::IfPresent("trace_id", trace.trace_id)});
}

asio::awaitable<void> WorkerPool::Impl::ShutdownOnStrand(Millis grace) {
    auto self = shared_from_this();
    stopping = true;
    wake_timer.cancel();
    log::Info(
        "worker", "worker pool stopping",
        {{"running", running.size()}, {"grace_ms", static_cast<std::int64_t>(grace.count())}});

    const auto deadline = SteadyClock::now() + grace;
    while (!running.empty() && SteadyClock::now() < deadline) {
        drained_timer.expires_at(deadline);
        co_await drained_timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    std::vector<std::string> remaining;
    for (const auto& [task_id, entry] : running) {
        remaining.push_back(task_id);
    }
    for (const std::string& task_id : remaining) {
        Stop(task_id, StopReason::kHandBack);
    }
    // Work already on the CPU pool cannot be interrupted; it ends quickly.
    const auto hand_back_deadline = SteadyClock::now() + std::chrono::seconds(10);
    while (!running.empty() && SteadyClock::now() < hand_back_deadline) {
        drained_timer.expires_at(hand_back_deadline);
        co_await drained_timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    stopped = true;
    log::Info("worker", "worker pool stopped", {{"unrecorded", running.size()}});
}

}  // namespace conveyor
