#pragma once

// Group commit: many concurrent writes of one kind share one database
// transaction, so they share one durable commit (one fsync on SQLite, one
// WAL flush on PostgreSQL) instead of paying for one each.
//
// Writers queue requests on a lane. Each lane has one thread that takes
// everything queued on it (up to `max_batch`), hands the batch to the commit
// function and reports each request's outcome through its callback. While a
// batch commits, new requests queue behind it, so the batch size grows with
// the load by itself and no request waits for a timer. Requests that must
// never commit concurrently with each other (two submissions with the same
// idempotency key) are given the same lane hint.

#include <atomic>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.hpp"

namespace conveyor {

template <typename Request, typename Outcome>
class GroupCommit {
  public:
    // Commits a batch and returns one outcome per request, in order. It runs
    // on a lane's thread, and two lanes may call it at once.
    using CommitFunction = std::function<std::vector<Outcome>(std::span<const Request>)>;
    // Receives one request's outcome, on the lane's thread.
    using Callback = std::function<void(Outcome)>;

    static constexpr std::size_t kAnyLane = static_cast<std::size_t>(-1);

    GroupCommit(CommitFunction commit, int lanes, std::size_t max_batch)
        : commit_(std::move(commit)), max_batch_(max_batch < 1 ? 1 : max_batch) {
        const int count = lanes < 1 ? 1 : lanes;
        for (int i = 0; i < count; ++i) {
            lanes_.push_back(std::make_unique<Lane>());
        }
        for (auto& lane : lanes_) {
            lane->thread = std::thread([this, raw = lane.get()] { RunLane(*raw); });
        }
    }

    GroupCommit(const GroupCommit&) = delete;
    GroupCommit& operator=(const GroupCommit&) = delete;

    // Commits whatever is still queued, then joins the lanes' threads.
    ~GroupCommit() {
        for (auto& lane : lanes_) {
            {
                std::lock_guard lock(lane->mutex);
                lane->stopping = true;
            }
            lane->ready.notify_one();
        }
        for (auto& lane : lanes_) {
            lane->thread.join();
        }
    }

    // Queues `request` on the lane that `lane_hint` picks (any lane for
    // kAnyLane). `done` is called exactly once with the outcome.
    void Enqueue(Request request, std::size_t lane_hint, Callback done) {
        if (lane_hint == kAnyLane) {
            lane_hint = next_lane_.fetch_add(1, std::memory_order_relaxed);
        }
        Lane& lane = *lanes_[lane_hint % lanes_.size()];
        bool was_idle = false;
        {
            std::lock_guard lock(lane.mutex);
            was_idle = lane.requests.empty();
            lane.requests.push_back(std::move(request));
            lane.callbacks.push_back(std::move(done));
        }
        if (was_idle) {
            lane.ready.notify_one();
        }
    }

  private:
    struct Lane {
        std::mutex mutex;
        std::condition_variable ready;
        std::vector<Request> requests;    // guarded by mutex
        std::vector<Callback> callbacks;  // guarded by mutex, parallel to requests
        bool stopping = false;            // guarded by mutex
        std::thread thread;
    };

    void RunLane(Lane& lane) {
        std::vector<Request> batch;
        std::vector<Callback> callbacks;
        while (true) {
            {
                std::unique_lock lock(lane.mutex);
                lane.ready.wait(lock, [&] { return !lane.requests.empty() || lane.stopping; });
                if (lane.requests.empty()) {
                    return;  // stopping, and nothing is left to commit
                }
                TakeBatch(lane, batch, callbacks);
            }
            std::vector<Outcome> outcomes;
            try {
                outcomes = commit_(std::span<const Request>(batch));
            } catch (const std::exception& error) {
                outcomes.clear();
                outcomes.resize(batch.size(), Outcome(Status::Internal(error.what())));
            }
            if (outcomes.size() != batch.size()) {
                outcomes.assign(
                    batch.size(),
                    Outcome(Status::Internal("a group commit lost track of a request")));
            }
            for (std::size_t i = 0; i < batch.size(); ++i) {
                callbacks[i](std::move(outcomes[i]));
            }
            batch.clear();
            callbacks.clear();
        }
    }

    // Moves up to max_batch_ of the oldest queued requests into `batch`.
    void TakeBatch(Lane& lane, std::vector<Request>& batch, std::vector<Callback>& callbacks) {
        if (lane.requests.size() <= max_batch_) {
            batch.swap(lane.requests);
            callbacks.swap(lane.callbacks);
            return;
        }
        const auto take = static_cast<std::ptrdiff_t>(max_batch_);
        batch.assign(std::make_move_iterator(lane.requests.begin()),
                     std::make_move_iterator(lane.requests.begin() + take));
        callbacks.assign(std::make_move_iterator(lane.callbacks.begin()),
                         std::make_move_iterator(lane.callbacks.begin() + take));
        lane.requests.erase(lane.requests.begin(), lane.requests.begin() + take);
        lane.callbacks.erase(lane.callbacks.begin(), lane.callbacks.begin() + take);
    }

    CommitFunction commit_;
    std::size_t max_batch_;
    std::vector<std::unique_ptr<Lane>> lanes_;
    std::atomic<std::size_t> next_lane_{0};
};

// Queues `request` and resumes the awaiting coroutine on its own executor
// with the outcome. Whatever `request` points to must stay alive until then,
// which it does when it lives in the awaiting coroutine's frame.
template <typename Request, typename Outcome>
auto AsyncGroupCommit(GroupCommit<Request, Outcome>& queue, Request request,
                      std::size_t lane_hint) {
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(Outcome)>(
        [&queue, lane_hint](auto handler, Request request) {
            auto executor = boost::asio::get_associated_executor(handler);
            // std::function needs a copyable callable, but the handler is
            // move-only, so the callback shares it.
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            queue.Enqueue(std::move(request), lane_hint, [shared, executor](Outcome outcome) {
                boost::asio::dispatch(executor, [shared, outcome = std::move(outcome)]() mutable {
                    std::move (*shared)(std::move(outcome));
                });
            });
        },
        boost::asio::use_awaitable, std::move(request));
}

}  // namespace conveyor
