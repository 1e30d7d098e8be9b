#include "http/task_watcher.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/blocking.hpp"
#include "core/log.hpp"

namespace conveyor::http {

namespace asio = boost::asio;

TaskWatcher::TaskWatcher(asio::any_io_executor executor, asio::thread_pool& db_pool,
                         TaskStore& store, Millis poll_interval)
    : executor_(std::move(executor)),
      db_pool_(db_pool),
      store_(store),
      poll_interval_(poll_interval) {}

void TaskWatcher::Start() {
    asio::co_spawn(executor_, PollLoop(), asio::detached);
}

void TaskWatcher::Stop() {
    std::unordered_map<std::string, std::vector<std::shared_ptr<Waiter>>> all;
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
        all.swap(waiters_);
    }
    for (auto& [task_id, list] : all) {
        for (auto& waiter : list) {
            Wake(waiter);
        }
    }
}

void TaskWatcher::Wake(const std::shared_ptr<Waiter>& waiter) {
    asio::post(waiter->timer.get_executor(), [waiter] {
        waiter->woken = true;
        waiter->timer.cancel();
    });
}

void TaskWatcher::NotifyFinished(const std::string& task_id) {
    std::vector<std::shared_ptr<Waiter>> list;
    {
        std::lock_guard lock(mutex_);
        const auto found = waiters_.find(task_id);
        if (found == waiters_.end()) {
            return;
        }
        list.swap(found->second);
        waiters_.erase(found);
    }
    for (auto& waiter : list) {
        Wake(waiter);
    }
}

void TaskWatcher::Remove(const std::string& task_id, const std::shared_ptr<Waiter>& waiter) {
    std::lock_guard lock(mutex_);
    const auto found = waiters_.find(task_id);
    if (found == waiters_.end()) {
        return;
    }
    std::erase(found->second, waiter);
    if (found->second.empty()) {
        waiters_.erase(found);
    }
}

asio::awaitable<void> TaskWatcher::WaitForFinish(std::string task_id,
                                                 std::chrono::steady_clock::time_point deadline,
                                                 asio::cancellation_slot stop_early) {
    auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor);
    waiter->timer.expires_at(deadline);
    {
        std::lock_guard lock(mutex_);
        if (stopped_) {
            co_return;
        }
        waiters_[task_id].push_back(waiter);
    }
    if (!waiter->woken) {
        co_await waiter->timer.async_wait(
            asio::bind_cancellation_slot(stop_early, asio::as_tuple(asio::use_awaitable)));
    }
    // The handler refers to the timer, which ends with this frame.
    if (stop_early.is_connected()) {
        stop_early.clear();
    }
    Remove(task_id, waiter);
}

asio::awaitable<void> TaskWatcher::PollLoop() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        timer.expires_after(poll_interval_);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));

        std::vector<std::string> ids;
        {
            std::lock_guard lock(mutex_);
            if (stopped_) {
                co_return;
            }
            ids.reserve(waiters_.size());
            for (const auto& [task_id, list] : waiters_) {
                ids.push_back(task_id);
            }
        }
        if (ids.empty()) {
            continue;
        }
        auto statuses =
            co_await RunBlocking(db_pool_, [this, &ids] { return store_.GetStatuses(ids); });
        if (!statuses.ok()) {
            log::Warn("http", "long-poll status check failed",
                      {{"error", statuses.status().message()}});
            continue;
        }
        for (const auto& [task_id, status] : *statuses) {
            if (IsTerminal(status)) {
                NotifyFinished(task_id);
            }
        }
    }
}

}  // namespace conveyor::http
