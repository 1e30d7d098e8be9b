#include "storage/postgres/postgres_change_feed.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.hpp"
#include "storage/postgres/postgres_test_support.hpp"

namespace conveyor {
namespace {

using postgres_test::Must;
using namespace std::chrono_literals;

constexpr UnixMillis kT0 = 1'750'000'000'000;
constexpr char kTenant[] = "acme";
// How long a test waits for a notification before it fails.
constexpr auto kPatience = std::chrono::seconds(30);

NewTask MakeTask(UnixMillis created_at, int max_attempts = 3) {
    NewTask task;
    task.task_id = NewUuidV7(created_at);
    task.tenant = kTenant;
    task.type = "text.analyze";
    task.params_json = "{}";
    task.text = "words";
    task.max_attempts = max_attempts;
    task.created_at = created_at;
    return task;
}

Millis NoBackoff(int /*attempts*/) {
    return Millis{0};
}

bool Has(const std::vector<Change>& changes, ChangeKind kind, const std::string& task_id) {
    return std::any_of(changes.begin(), changes.end(), [&](const Change& change) {
        return change.kind == kind && change.task_id == task_id;
    });
}

int CountSubmitted(const std::vector<Change>& changes) {
    return static_cast<int>(std::count_if(changes.begin(), changes.end(), [](const Change& change) {
        return change.kind == ChangeKind::kSubmitted;
    }));
}

TEST(ChangePayload, ParsesEachKind) {
    const std::optional<Change> submitted = postgres::ParseChangePayload("s");
    const std::optional<Change> finished = postgres::ParseChangePayload("f:abc");
    const std::optional<Change> cancelled = postgres::ParseChangePayload("c:abc");

    ASSERT_TRUE(submitted.has_value());
    EXPECT_EQ(submitted->kind, ChangeKind::kSubmitted);
    EXPECT_EQ(submitted->task_id, "");
    ASSERT_TRUE(finished.has_value());
    EXPECT_EQ(finished->kind, ChangeKind::kFinished);
    EXPECT_EQ(finished->task_id, "abc");
    ASSERT_TRUE(cancelled.has_value());
    EXPECT_EQ(cancelled->kind, ChangeKind::kCancelled);
    EXPECT_EQ(cancelled->task_id, "abc");
}

TEST(ChangePayload, IgnoresUnknownPayloads) {
    for (const char* payload : {"", "x", "f:", "c:", "s:abc", "F:abc"}) {
        EXPECT_FALSE(postgres::ParseChangePayload(payload).has_value()) << payload;
    }
}

class PostgresChangeFeedTest : public postgres_test::DatabaseTest {
  protected:
    void SetUp() override {
        DatabaseTest::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        store_ = OpenStore();
        ASSERT_NE(store_, nullptr);
        feed_ = store_->OpenChangeFeed();
        ASSERT_NE(feed_, nullptr);
    }

    void TearDown() override {
        feed_.reset();
        store_.reset();
        DatabaseTest::TearDown();
    }

    // Returns the number of sessions on this database that have run LISTEN
    // as their latest statement.
    int ListeningSessions() {
        return std::stoi(
            SqlValue("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                     " AND query = 'LISTEN conveyor_tasks'"));
    }

    // Calls Wait until the feed's session has run LISTEN, so that nothing
    // the test does next is missed. Bounded to 30 s, which leaves room for
    // a machine busy with other tests.
    void AwaitListening() {
        const auto deadline = std::chrono::steady_clock::now() + kPatience;
        while (std::chrono::steady_clock::now() < deadline) {
            Result<std::vector<Change>> changes = feed_->Wait(50ms);
            ASSERT_TRUE(changes.ok()) << changes.status().message();
            if (ListeningSessions() > 0) {
                return;
            }
        }
        FAIL() << "the change feed never ran LISTEN";
    }

    // Collects changes until `done` returns true for them or 30 s pass.
    std::vector<Change> CollectUntil(const std::function<bool(const std::vector<Change>&)>& done) {
        std::vector<Change> collected;
        const auto deadline = std::chrono::steady_clock::now() + kPatience;
        while (!done(collected) && std::chrono::steady_clock::now() < deadline) {
            Result<std::vector<Change>> changes = feed_->Wait(100ms);
            if (!changes.ok()) {
                ADD_FAILURE() << "Wait failed: " << changes.status().message();
                return collected;
            }
            collected.insert(collected.end(), changes->begin(), changes->end());
        }
        return collected;
    }

    Task Add(const NewTask& task) {
        return Must(store_->Create(task, std::nullopt), "Create").task;
    }

    Lease ClaimOne(UnixMillis now, Millis lease = 30s) {
        std::vector<ClaimedTask> claimed = Must(store_->Claim("worker-1", 1, now, lease), "Claim");
        if (claimed.size() != 1) {
            ADD_FAILURE() << "expected one claimed task, got " << claimed.size();
            return Lease{};
        }
        return claimed.front().lease;
    }

    std::unique_ptr<PostgresTaskStore> store_;
    std::unique_ptr<ChangeFeed> feed_;
};

TEST_F(PostgresChangeFeedTest, ReportsSubmittedFinishedAndCancelled) {
    AwaitListening();
    const Task done = Add(MakeTask(kT0));
    const Lease lease = ClaimOne(kT0 + 10);
    ASSERT_EQ(Must(store_->Complete(lease, "{}", kT0 + 20), "Complete"), FenceOutcome::kApplied);
    const Task cancelled = Add(MakeTask(kT0 + 1));
    Must(store_->Cancel(kTenant, cancelled.task_id, kT0 + 30), "Cancel");

    // Submissions are announced a moment after they commit (debounced), so
    // the announcement may come after the cancellation's.
    const std::vector<Change> changes = CollectUntil([&](const std::vector<Change>& seen) {
        return Has(seen, ChangeKind::kFinished, cancelled.task_id) && CountSubmitted(seen) >= 1;
    });

    EXPECT_GE(CountSubmitted(changes), 1);
    EXPECT_TRUE(Has(changes, ChangeKind::kFinished, done.task_id));
    EXPECT_TRUE(Has(changes, ChangeKind::kCancelled, cancelled.task_id));
    EXPECT_TRUE(Has(changes, ChangeKind::kFinished, cancelled.task_id));
    EXPECT_FALSE(Has(changes, ChangeKind::kCancelled, done.task_id));
}

TEST_F(PostgresChangeFeedTest, CreateAnnouncesSubmitted) {
    AwaitListening();
    Add(MakeTask(kT0));

    const std::vector<Change> changes =
        CollectUntil([](const std::vector<Change>& seen) { return CountSubmitted(seen) > 0; });

    ASSERT_EQ(CountSubmitted(changes), 1);
    EXPECT_EQ(changes.front().task_id, "") << "kSubmitted may stand for many tasks";
}

TEST_F(PostgresChangeFeedTest, SubmissionBurstSharesNotifications) {
    AwaitListening();
    constexpr int kThreads = 16;
    constexpr int kPerThread = 25;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([this, t] {
            for (int i = 0; i < kPerThread; ++i) {
                Add(MakeTask(kT0 + t * kPerThread + i));
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }

    // Collect until a quiet tenth of a second: every notification is in.
    std::vector<Change> changes;
    for (int round = 0; round < 50; ++round) {
        Result<std::vector<Change>> more = feed_->Wait(100ms);
        ASSERT_TRUE(more.ok()) << more.status().message();
        if (more->empty() && !changes.empty()) {
            break;
        }
        changes.insert(changes.end(), more->begin(), more->end());
    }

    EXPECT_GE(CountSubmitted(changes), 1);
    EXPECT_LT(CountSubmitted(changes), kThreads * kPerThread)
        << "a burst of submissions must not cost one notification each";
}

TEST_F(PostgresChangeFeedTest, RequeuesAndRedriveAnnounceSubmitted) {
    const Task retried = Add(MakeTask(kT0));
    const Task final_failure = Add(MakeTask(kT0 + 1));
    AwaitListening();

    // Each step waits for its own announcement, so none can stand for another.
    ASSERT_EQ(
        Must(store_->Fail(ClaimOne(kT0 + 10), {"timeout", "slow"}, kT0 + 20, kT0 + 15), "Fail"),
        FenceOutcome::kApplied);
    EXPECT_EQ(CountSubmitted(CollectUntil(
                  [](const std::vector<Change>& seen) { return CountSubmitted(seen) > 0; })),
              1)
        << "a failure with a retry";

    ASSERT_EQ(Must(store_->Fail(ClaimOne(kT0 + 30), {"invalid_input", "x"}, std::nullopt, kT0 + 31),
                   "Fail"),
              FenceOutcome::kApplied);
    const std::vector<Change> failed = CollectUntil([&](const std::vector<Change>& seen) {
        return Has(seen, ChangeKind::kFinished, retried.task_id) ||
               Has(seen, ChangeKind::kFinished, final_failure.task_id);
    });
    EXPECT_EQ(failed.size(), 1u) << "a final failure is only finished";

    const std::string failed_id = failed.empty() ? "" : failed.front().task_id;
    Must(store_->Redrive(kTenant, failed_id, kT0 + 40), "Redrive");
    EXPECT_EQ(CountSubmitted(CollectUntil(
                  [](const std::vector<Change>& seen) { return CountSubmitted(seen) > 0; })),
              1)
        << "a redrive";

    ASSERT_TRUE(store_->HandBack(ClaimOne(kT0 + 50), kT0 + 51).ok());
    EXPECT_EQ(CountSubmitted(CollectUntil(
                  [](const std::vector<Change>& seen) { return CountSubmitted(seen) > 0; })),
              1)
        << "a hand-back";
}

TEST_F(PostgresChangeFeedTest, BatchRequeueAnnouncesOneSubmitted) {
    constexpr int kTasks = 20;
    for (int i = 0; i < kTasks; ++i) {
        Add(MakeTask(kT0 + i));
    }
    const Task marker = Add(MakeTask(kT0 + kTasks, 1));
    ASSERT_EQ(Must(store_->Claim("worker-1", kTasks, kT0 + 100, 1000ms), "Claim").size(),
              static_cast<std::size_t>(kTasks));
    const Lease marker_lease = ClaimOne(kT0 + 100, 60s);
    AwaitListening();

    const ReapOutcome reaped = Must(store_->ReapExpired(kT0 + 5000, 100, NoBackoff), "Reap");
    ASSERT_EQ(reaped.requeued, kTasks);
    // A later change marks the end of what the reap announced.
    ASSERT_EQ(Must(store_->Complete(marker_lease, "{}", kT0 + 5001), "Complete"),
              FenceOutcome::kApplied);
    const std::vector<Change> changes = CollectUntil([&](const std::vector<Change>& seen) {
        return Has(seen, ChangeKind::kFinished, marker.task_id);
    });

    EXPECT_EQ(CountSubmitted(changes), 1) << "one transaction requeued " << kTasks << " tasks";
    EXPECT_TRUE(Has(changes, ChangeKind::kFinished, marker.task_id));
}

TEST_F(PostgresChangeFeedTest, ReapThatFailsAnnouncesFinished) {
    const Task task = Add(MakeTask(kT0, 1));
    ClaimOne(kT0 + 10, 1000ms);
    AwaitListening();

    ASSERT_EQ(Must(store_->ReapExpired(kT0 + 5000, 10, NoBackoff), "Reap").failed, 1);
    const std::vector<Change> changes = CollectUntil([&](const std::vector<Change>& seen) {
        return Has(seen, ChangeKind::kFinished, task.task_id);
    });

    EXPECT_TRUE(Has(changes, ChangeKind::kFinished, task.task_id));
    EXPECT_EQ(CountSubmitted(changes), 0);
}

TEST_F(PostgresChangeFeedTest, RejectedCreateAnnouncesNothing) {
    const Task existing = Add(MakeTask(kT0));
    const Lease lease = ClaimOne(kT0 + 10);
    AwaitListening();
    NewTask duplicate = MakeTask(kT0 + 1);
    duplicate.task_id = existing.task_id;

    ASSERT_EQ(store_->Create(duplicate, std::nullopt).status().code(), StatusCode::kConflict);
    // Notifications arrive in commit order, so this one comes after any that
    // the rejected create might have sent.
    ASSERT_EQ(Must(store_->Complete(lease, "{}", kT0 + 20), "Complete"), FenceOutcome::kApplied);
    const std::vector<Change> changes = CollectUntil([&](const std::vector<Change>& seen) {
        return Has(seen, ChangeKind::kFinished, existing.task_id);
    });

    EXPECT_TRUE(Has(changes, ChangeKind::kFinished, existing.task_id));
    EXPECT_EQ(CountSubmitted(changes), 0);
}

TEST_F(PostgresChangeFeedTest, InterruptEndsWaitInProgress) {
    AwaitListening();
    const auto started = std::chrono::steady_clock::now();
    std::future<Result<std::vector<Change>>> waiting =
        std::async(std::launch::async, [&] { return feed_->Wait(60s); });
    std::this_thread::sleep_for(100ms);

    feed_->Interrupt();

    ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready)
        << "Wait should return soon after Interrupt";
    Result<std::vector<Change>> changes = waiting.get();
    ASSERT_TRUE(changes.ok()) << changes.status().message();
    EXPECT_TRUE(changes->empty());
    EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
}

TEST_F(PostgresChangeFeedTest, InterruptBeforeWaitIsKept) {
    AwaitListening();
    feed_->Interrupt();
    const auto started = std::chrono::steady_clock::now();

    Result<std::vector<Change>> changes = feed_->Wait(60s);

    ASSERT_TRUE(changes.ok()) << changes.status().message();
    EXPECT_TRUE(changes->empty());
    EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
}

TEST_F(PostgresChangeFeedTest, InterruptStopsConnecting) {
    // No Wait has run, so this Wait starts by connecting.
    feed_->Interrupt();

    Result<std::vector<Change>> changes = feed_->Wait(60s);

    ASSERT_TRUE(changes.ok()) << changes.status().message();
    EXPECT_TRUE(changes->empty());
}

TEST_F(PostgresChangeFeedTest, TimeoutReturnsEmpty) {
    AwaitListening();

    Result<std::vector<Change>> changes = feed_->Wait(50ms);

    ASSERT_TRUE(changes.ok()) << changes.status().message();
    EXPECT_TRUE(changes->empty());
}

TEST_F(PostgresChangeFeedTest, TerminatedSessionIsUnavailableThenListensAgain) {
    AwaitListening();
    ASSERT_EQ(SqlValue("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                       " WHERE datname = current_database() AND query = 'LISTEN conveyor_tasks'"),
              "1");

    Result<std::vector<Change>> broken = feed_->Wait(5s);
    ASSERT_FALSE(broken.ok());
    EXPECT_EQ(broken.status().code(), StatusCode::kUnavailable);

    AwaitListening();
    const Task task = Add(MakeTask(kT0));
    Must(store_->Cancel(kTenant, task.task_id, kT0 + 10), "Cancel");
    const std::vector<Change> changes = CollectUntil([&](const std::vector<Change>& seen) {
        return Has(seen, ChangeKind::kCancelled, task.task_id);
    });
    EXPECT_TRUE(Has(changes, ChangeKind::kCancelled, task.task_id));
}

TEST_F(PostgresChangeFeedTest, UnreachableServerIsUnavailable) {
    auto feed = postgres::PostgresChangeFeed::Create(
        "postgresql://admin:s3cret@/db?host=/nonexistent-conveyor-dir");
    ASSERT_NE(feed, nullptr);

    Result<std::vector<Change>> changes = feed->Wait(5s);

    ASSERT_FALSE(changes.ok());
    EXPECT_EQ(changes.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(changes.status().message().find("s3cret"), std::string::npos)
        << changes.status().message();
}

}  // namespace
}  // namespace conveyor
