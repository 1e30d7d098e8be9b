#include "storage/group_commit.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace conveyor {
namespace {

using IntCommit = GroupCommit<int, Result<int>>;
using namespace std::chrono_literals;

// Records what each call of the commit function saw.
struct CommitLog {
    std::mutex mutex;
    std::vector<std::vector<int>> batches;
    std::vector<std::thread::id> threads;
};

IntCommit::CommitFunction Doubling(CommitLog& log) {
    return [&log](std::span<const int> batch) {
        {
            std::lock_guard lock(log.mutex);
            log.batches.emplace_back(batch.begin(), batch.end());
            log.threads.push_back(std::this_thread::get_id());
        }
        std::vector<Result<int>> outcomes;
        for (int value : batch) {
            outcomes.emplace_back(value * 2);
        }
        return outcomes;
    };
}

// Collects outcomes by request value.
struct Outcomes {
    std::mutex mutex;
    std::vector<std::pair<int, Result<int>>> received;

    IntCommit::Callback For(int request) {
        return [this, request](Result<int> outcome) {
            std::lock_guard lock(mutex);
            received.emplace_back(request, std::move(outcome));
        };
    }
};

TEST(GroupCommit, EveryRequestGetsItsOwnOutcome) {
    CommitLog log;
    Outcomes outcomes;
    {
        IntCommit commit(Doubling(log), 2, 16);
        std::vector<std::thread> writers;
        for (int w = 0; w < 4; ++w) {
            writers.emplace_back([&, w] {
                for (int i = 0; i < 100; ++i) {
                    const int value = w * 1000 + i;
                    commit.Enqueue(value, IntCommit::kAnyLane, outcomes.For(value));
                }
            });
        }
        for (auto& writer : writers) {
            writer.join();
        }
    }  // the destructor commits what is still queued

    ASSERT_EQ(outcomes.received.size(), 400u);
    for (const auto& [request, outcome] : outcomes.received) {
        ASSERT_TRUE(outcome.ok());
        EXPECT_EQ(*outcome, request * 2);
    }
}

// A commit function whose first call waits until Release(), so that a test
// can queue requests while a batch is being committed.
class HeldFirstCommit {
  public:
    explicit HeldFirstCommit(CommitLog& log) : log_(log), released_(release_.get_future()) {}

    IntCommit::CommitFunction Function() {
        return [this](std::span<const int> batch) {
            if (first_) {
                first_ = false;
                started_.set_value();
                released_.wait();
            }
            return Doubling(log_)(batch);
        };
    }

    void WaitUntilHeld() { started_.get_future().wait(); }
    void Release() { release_.set_value(); }

  private:
    CommitLog& log_;
    std::promise<void> release_;
    std::shared_future<void> released_;
    std::promise<void> started_;
    bool first_ = true;  // touched by the lane's thread only
};

// Commits 0 alone, queues 1 to 10 while that commit is held, then lets the
// lane go on with at most `max_batch` requests per commit.
void QueueTenDuringFirstCommit(CommitLog& log, Outcomes& outcomes, std::size_t max_batch) {
    HeldFirstCommit held(log);
    IntCommit commit(held.Function(), 1, max_batch);
    commit.Enqueue(0, IntCommit::kAnyLane, outcomes.For(0));
    held.WaitUntilHeld();
    for (int i = 1; i <= 10; ++i) {
        commit.Enqueue(i, IntCommit::kAnyLane, outcomes.For(i));
    }
    held.Release();
}  // the destructor commits the rest before `held` goes

TEST(GroupCommit, RequestsQueuedDuringACommitShareTheNext) {
    CommitLog log;
    Outcomes outcomes;
    QueueTenDuringFirstCommit(log, outcomes, 64);

    ASSERT_EQ(log.batches.size(), 2u);
    EXPECT_EQ(log.batches[0], std::vector<int>{0});
    EXPECT_EQ(log.batches[1], (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

TEST(GroupCommit, MaxBatchBoundsEachCommit) {
    CommitLog log;
    Outcomes outcomes;
    QueueTenDuringFirstCommit(log, outcomes, 4);

    ASSERT_EQ(log.batches.size(), 4u);
    EXPECT_EQ(log.batches[1], (std::vector<int>{1, 2, 3, 4}));
    EXPECT_EQ(log.batches[2], (std::vector<int>{5, 6, 7, 8}));
    EXPECT_EQ(log.batches[3], (std::vector<int>{9, 10}));
    EXPECT_EQ(outcomes.received.size(), 11u);
}

TEST(GroupCommit, SameLaneHintUsesOneThread) {
    CommitLog log;
    Outcomes outcomes;
    {
        IntCommit commit(Doubling(log), 4, 8);
        for (int i = 0; i < 50; ++i) {
            commit.Enqueue(i, 7, outcomes.For(i));
        }
    }

    const std::set<std::thread::id> threads(log.threads.begin(), log.threads.end());
    EXPECT_EQ(threads.size(), 1u);
    std::vector<int> order;
    for (const auto& batch : log.batches) {
        order.insert(order.end(), batch.begin(), batch.end());
    }
    ASSERT_EQ(order.size(), 50u);
    for (int i = 0; i < 50; ++i) {
        EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
    }
}

TEST(GroupCommit, ThrowingCommitFailsItsBatchOnly) {
    Outcomes outcomes;
    bool thrown = false;
    IntCommit::CommitFunction flaky = [&](std::span<const int> batch) {
        if (!thrown) {
            thrown = true;
            throw std::runtime_error("disk on fire");
        }
        std::vector<Result<int>> results(batch.begin(), batch.end());
        return results;
    };
    {
        IntCommit commit(flaky, 1, 1);
        commit.Enqueue(1, IntCommit::kAnyLane, outcomes.For(1));
        commit.Enqueue(2, IntCommit::kAnyLane, outcomes.For(2));
    }

    ASSERT_EQ(outcomes.received.size(), 2u);
    EXPECT_EQ(outcomes.received[0].second.status().code(), StatusCode::kInternal);
    EXPECT_EQ(outcomes.received[0].second.status().message(), "disk on fire");
    ASSERT_TRUE(outcomes.received[1].second.ok());
    EXPECT_EQ(*outcomes.received[1].second, 2);
}

TEST(GroupCommit, WrongOutcomeCountFailsTheBatch) {
    Outcomes outcomes;
    IntCommit::CommitFunction short_by_one = [](std::span<const int> batch) {
        return std::vector<Result<int>>(batch.size() - 1, Result<int>(0));
    };
    {
        IntCommit commit(short_by_one, 1, 1);
        commit.Enqueue(5, IntCommit::kAnyLane, outcomes.For(5));
    }

    ASSERT_EQ(outcomes.received.size(), 1u);
    EXPECT_EQ(outcomes.received[0].second.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace conveyor
