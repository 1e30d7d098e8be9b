#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/settings.hpp"
#include "storage/task_commits.hpp"
#include "storage/task_store.hpp"

namespace conveyor {

// Runs tasks in this process: claims eligible tasks up to --concurrency,
// waits out each one's simulated delay on a timer, runs the work on the CPU
// pool, and records the outcome with a fenced write. It also renews its
// leases, notices tasks cancelled or reclaimed elsewhere, and reaps expired
// leases of crashed workers.
//
// All state lives on one strand, so no member needs a lock; the public
// methods post to it and are thread-safe.
class WorkerPool {
  public:
    struct Options {
        int concurrency = 1000;
        DurationRange simulated_delay;
        Millis lease{30'000};
        Millis retry_base{1000};
        Millis retry_cap{300'000};
        Millis task_timeout{300'000};
        Millis idle_poll{100};    // how often an idle pool looks for new tasks
        Millis cancel_poll{500};  // how often it checks its tasks are still its own
        Millis reap_interval{1000};
        int claim_batch = 64;
        Millis retention{7 * 24 * 3'600'000};  // finished tasks older than this are deleted
        Millis prune_interval{60'000};
        int prune_batch = 500;
    };

    // Completions go through `complete_commit`, so attempts that finish
    // together share a transaction. `on_finished` is called with the id of
    // each task this pool moved to a terminal state, from the pool's strand;
    // it may be empty.
    WorkerPool(boost::asio::any_io_executor executor, boost::asio::thread_pool& db_pool,
               boost::asio::thread_pool& cpu_pool, TaskStore& store,
               CompleteCommit& complete_commit, Options options,
               std::function<void(const std::string&)> on_finished);
    ~WorkerPool();

    // Starts claiming, renewing and reaping.
    void Start();

    // Looks for work now instead of at the next poll.
    void Wake();

    // Stops the task at once if this process runs it.
    void CancelLocal(const std::string& task_id);

    // Stops claiming, lets running tasks finish for up to `grace`, then hands
    // the rest back without counting their attempt. Completes when every
    // task has been recorded or handed back.
    boost::asio::awaitable<void> Shutdown(Millis grace);

    const std::string& owner() const;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

// Returns a lease owner id unique to this process start: host, pid and a
// random suffix, so a restarted process never mistakes an old lease for its
// own.
std::string MakeOwnerId();

}  // namespace conveyor
