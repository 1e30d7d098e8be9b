#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/duration.hpp"
#include "storage/task_store.hpp"

namespace conveyor::http {

// Wakes long polls when their task reaches a terminal state. Workers in the
// same process report finished tasks directly; tasks finished by other
// processes are found by polling the store for the watched ids, one query
// per interval for all of them.
class TaskWatcher {
  public:
    TaskWatcher(boost::asio::any_io_executor executor, boost::asio::thread_pool& db_pool,
                TaskStore& store, Millis poll_interval);

    // Starts the polling loop. Call once.
    void Start();

    // Wakes every waiter and stops polling; later waits return at once.
    void Stop();

    // Suspends until NotifyFinished(task_id), the deadline, Stop, or a
    // signal on `stop_early`, whose handler is cleared before it returns.
    // Must be awaited on a strand, which orders it with the wake-up; the
    // signal must be emitted on the same strand.
    boost::asio::awaitable<void> WaitForFinish(std::string task_id,
                                               std::chrono::steady_clock::time_point deadline,
                                               boost::asio::cancellation_slot stop_early = {});

    // Wakes the waiters of `task_id`. Thread-safe.
    void NotifyFinished(const std::string& task_id);

  private:
    struct Waiter {
        explicit Waiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
        boost::asio::steady_timer timer;
        bool woken = false;  // touched only on the timer's executor
    };

    void Wake(const std::shared_ptr<Waiter>& waiter);
    void Remove(const std::string& task_id, const std::shared_ptr<Waiter>& waiter);
    boost::asio::awaitable<void> PollLoop();

    boost::asio::any_io_executor executor_;
    boost::asio::thread_pool& db_pool_;
    TaskStore& store_;
    Millis poll_interval_;

    std::mutex mutex_;
    std::unordered_map<std::string, std::vector<std::shared_ptr<Waiter>>> waiters_;  // by mutex_
    bool stopped_ = false;                                                           // by mutex_
};

}  // namespace conveyor::http
