#include "storage/postgres/postgres_task_store.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <latch>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.hpp"
#include "storage/postgres/postgres_connection.hpp"
#include "storage/postgres/postgres_schema.hpp"
#include "storage/postgres/postgres_test_support.hpp"

namespace conveyor {
namespace {

using postgres_test::Must;
using namespace std::chrono_literals;

constexpr UnixMillis kT0 = 1'750'000'000'000;
constexpr Millis kLease = 30s;
constexpr char kTenant[] = "acme";

NewTask MakeTask(UnixMillis created_at, std::string tenant = kTenant,
                 std::string text = "the quick brown fox", std::string type = "text.analyze",
                 int max_attempts = 3) {
    NewTask task;
    task.task_id = NewUuidV7(created_at);
    task.tenant = std::move(tenant);
    task.type = std::move(type);
    task.params_json = R"({"top_n":5,"language":"english","stem":false})";
    task.text = std::move(text);
    task.max_attempts = max_attempts;
    task.created_at = created_at;
    return task;
}

Millis NoBackoff(int /*attempts*/) {
    return Millis{0};
}

class PostgresTaskStoreTest : public postgres_test::DatabaseTest {
  protected:
    void SetUp() override {
        DatabaseTest::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        store_ = OpenStore();
        ASSERT_NE(store_, nullptr);
    }

    void TearDown() override {
        store_.reset();
        DatabaseTest::TearDown();
    }

    Task Add(const NewTask& task) {
        return Must(store_->Create(task, std::nullopt), "Create").task;
    }

    Task Fetch(const std::string& task_id) {
        return Must(store_->Get(kTenant, task_id, false), "Get");
    }

    std::vector<ClaimedTask> ClaimAll(const std::string& owner, UnixMillis now, int limit = 100) {
        return Must(store_->Claim(owner, limit, now, kLease), "Claim");
    }

    // Claims exactly one task and returns its lease.
    Lease ClaimOne(const std::string& owner, UnixMillis now, Millis lease = kLease) {
        std::vector<ClaimedTask> claimed = Must(store_->Claim(owner, 1, now, lease), "Claim");
        if (claimed.size() != 1) {
            ADD_FAILURE() << "expected one claimed task, got " << claimed.size();
            return Lease{};
        }
        return claimed.front().lease;
    }

    // Rows of task_count_changes that no fold has moved yet.
    std::int64_t ChangeRows() {
        Result<postgres::QueryResult> rows =
            Sql().ExecuteScript("SELECT count(*) FROM task_count_changes");
        if (!rows.ok() || rows->rows() != 1) {
            ADD_FAILURE() << "cannot count task_count_changes";
            return -1;
        }
        return std::stoll(rows->Text(0, 0));
    }

    std::unique_ptr<PostgresTaskStore> store_;
};

// Opening, migrating and the cursor key

TEST_F(PostgresTaskStoreTest, MigrationsAreRecordedOnce) {
    ASSERT_TRUE(store_->Migrate().ok());

    const std::string latest = std::to_string(postgres::LatestSchemaVersion());
    EXPECT_EQ(SqlValue("SELECT count(*) FROM schema_migrations"), latest);
    EXPECT_EQ(SqlValue("SELECT max(version) FROM schema_migrations"), latest);
}

TEST_F(PostgresTaskStoreTest, ConcurrentMigrationsAgree) {
    // A database of its own, where no store has migrated yet.
    const Result<postgres_test::TestDatabase> fresh =
        postgres_test::SharedCluster()->CreateDatabase();
    ASSERT_TRUE(fresh.ok()) << fresh.status().message();
    constexpr int kProcesses = 4;
    std::vector<std::string> keys(kProcesses);
    std::vector<std::string> errors(kProcesses);
    std::latch start(kProcesses);
    std::vector<std::thread> threads;
    for (int i = 0; i < kProcesses; ++i) {
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            auto store = PostgresTaskStore::Open(PostgresOptions{.url = fresh->url});
            if (!store.ok()) {
                errors[i] = store.status().message();
                return;
            }
            if (Status status = (*store)->Migrate(); !status.ok()) {
                errors[i] = status.message();
                return;
            }
            Result<std::string> key = (*store)->CursorKey();
            if (!key.ok()) {
                errors[i] = key.status().message();
                return;
            }
            keys[i] = *key;
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }

    for (int i = 0; i < kProcesses; ++i) {
        EXPECT_EQ(errors[i], "") << "store " << i;
        EXPECT_EQ(keys[i], keys[0]) << "store " << i;
    }
    EXPECT_EQ(keys[0].size(), 32u);
    EXPECT_TRUE(postgres_test::SharedCluster()->DropDatabase(fresh->name).ok());
}

TEST_F(PostgresTaskStoreTest, CursorKeyIsStoredInMeta) {
    const std::string key = Must(store_->CursorKey(), "CursorKey");

    EXPECT_EQ(key.size(), 32u);
    EXPECT_EQ(SqlValue("SELECT octet_length(value) FROM meta WHERE name = 'cursor_key'"), "32");
}

TEST_F(PostgresTaskStoreTest, CursorKeyBeforeMigrateIsInternal) {
    const Result<postgres_test::TestDatabase> fresh =
        postgres_test::SharedCluster()->CreateDatabase();
    ASSERT_TRUE(fresh.ok()) << fresh.status().message();
    {
        auto store = PostgresTaskStore::Open(PostgresOptions{.url = fresh->url});
        ASSERT_TRUE(store.ok()) << store.status().message();

        Result<std::string> key = (*store)->CursorKey();

        ASSERT_FALSE(key.ok());
        EXPECT_EQ(key.status().code(), StatusCode::kInternal);
    }
    EXPECT_TRUE(postgres_test::SharedCluster()->DropDatabase(fresh->name).ok());
}

TEST(PostgresTaskStoreOpen, RejectsZeroPoolSize) {
    auto store = PostgresTaskStore::Open(
        PostgresOptions{.url = "postgresql:///db?host=/nonexistent", .pool_size = 0});

    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
}

TEST(PostgresTaskStoreOpen, RejectsUnparsableUrl) {
    for (const char* url : {"postgresql://admin:s3cret@[::1/db",
                            "postgresql://admin:s3cret@/db?bogus_option=s3cret"}) {
        auto store = PostgresTaskStore::Open(PostgresOptions{.url = url});

        ASSERT_FALSE(store.ok()) << url;
        EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << url;
        EXPECT_EQ(store.status().message().find("s3cret"), std::string::npos)
            << store.status().message();
    }
}

TEST(PostgresTaskStoreOpen, UnreachableServerIsUnavailable) {
    auto store = PostgresTaskStore::Open(
        PostgresOptions{.url = "postgresql://admin:s3cret@/db?host=/nonexistent-conveyor-dir"});
    ASSERT_TRUE(store.ok()) << "opening does not connect: " << store.status().message();

    const Status migrated = (*store)->Migrate();
    const Status pinged = (*store)->Ping();

    EXPECT_EQ(migrated.code(), StatusCode::kUnavailable);
    EXPECT_EQ(pinged.code(), StatusCode::kUnavailable);
    EXPECT_EQ(migrated.message().find("s3cret"), std::string::npos) << migrated.message();
    EXPECT_NE(migrated.message().find("/nonexistent-conveyor-dir"), std::string::npos)
        << "the log message should name the target: " << migrated.message();
}

TEST(PostgresTaskStoreOpen, DescribeTargetOmitsPassword) {
    const std::string description =
        postgres::DescribeTarget("postgresql://admin:s3cret@db.internal:6432/conveyor");

    EXPECT_EQ(description, "host=db.internal port=6432 dbname=conveyor user=admin");
}

TEST_F(PostgresTaskStoreTest, SetsApplicationName) {
    ASSERT_TRUE(store_->Ping().ok());

    EXPECT_EQ(SqlValue("SELECT count(*) FROM pg_stat_activity"
                       " WHERE application_name = 'conveyor' AND datname = current_database()"),
              "1")
        << "the store has one session, and the test's own has another name";
}

// Errors

TEST(PostgresErrorStatus, TransientStatesAreUnavailable) {
    for (const char* sqlstate : {"08000", "08003", "08006", "08001", "08004", "57P01", "57P02",
                                 "57P03", "53300", "25006", "40001", "40P01"}) {
        EXPECT_EQ(postgres::ErrorStatus(sqlstate, "test", "detail").code(),
                  StatusCode::kUnavailable)
            << "SQLSTATE " << sqlstate;
    }
}

TEST(PostgresErrorStatus, UniqueViolationIsConflict) {
    EXPECT_EQ(postgres::ErrorStatus("23505", "test", "detail").code(), StatusCode::kConflict);
}

TEST(PostgresErrorStatus, OtherStatesAreInternal) {
    for (const char* sqlstate : {"", "42P01", "42601", "23503", "22021", "XX000", "57014"}) {
        EXPECT_EQ(postgres::ErrorStatus(sqlstate, "test", "detail").code(), StatusCode::kInternal)
            << "SQLSTATE " << sqlstate;
    }
}

TEST(PostgresErrorStatus, ClassifiesLossAndRetry) {
    EXPECT_TRUE(postgres::IsConnectionLoss("08006"));
    EXPECT_TRUE(postgres::IsConnectionLoss("57P01"));
    EXPECT_FALSE(postgres::IsConnectionLoss("40001"));
    EXPECT_FALSE(postgres::IsConnectionLoss("23505"));
    EXPECT_TRUE(postgres::IsRetryable("40001"));
    EXPECT_TRUE(postgres::IsRetryable("40P01"));
    EXPECT_FALSE(postgres::IsRetryable("57P01"));
}

TEST_F(PostgresTaskStoreTest, GetDoesNotWaitForRowLock) {
    const Task task = Add(MakeTask(kT0));
    ASSERT_TRUE(Sql().ExecuteScript("BEGIN").ok());
    ASSERT_TRUE(
        Sql()
            .ExecuteScript("SELECT 1 FROM tasks WHERE task_id = '" + task.task_id + "' FOR UPDATE")
            .ok());

    Result<Task> fetched = store_->Get(kTenant, task.task_id, true);

    ASSERT_TRUE(Sql().ExecuteScript("ROLLBACK").ok());
    ASSERT_TRUE(fetched.ok()) << fetched.status().message();
    EXPECT_EQ(fetched->task_id, task.task_id);
}

TEST_F(PostgresTaskStoreTest, ClaimSkipsLockedRows) {
    const Task locked = Add(MakeTask(kT0));
    const Task free = Add(MakeTask(kT0 + 1));
    ASSERT_TRUE(Sql().ExecuteScript("BEGIN").ok());
    ASSERT_TRUE(Sql()
                    .ExecuteScript("SELECT 1 FROM tasks WHERE task_id = '" + locked.task_id +
                                   "' FOR UPDATE")
                    .ok());

    std::vector<ClaimedTask> claimed = ClaimAll("worker-1", kT0 + 10);

    ASSERT_TRUE(Sql().ExecuteScript("ROLLBACK").ok());
    ASSERT_EQ(claimed.size(), 1u) << "the claim should pass over the locked row, not wait";
    EXPECT_EQ(claimed[0].task.task_id, free.task_id);
    EXPECT_EQ(ClaimAll("worker-1", kT0 + 10).size(), 1u) << "the row is free again";
}

// Pruning finished tasks

class PostgresPruneTest : public PostgresTaskStoreTest {};

TEST_F(PostgresPruneTest, DeletesTextsAndLeavesOtherKeys) {
    const Task done =
        Must(store_->Create(MakeTask(kT0), IdempotencyKey{"key-old", "hash-1"}), "Create").task;
    const Task kept =
        Must(store_->Create(MakeTask(kT0 + 1), IdempotencyKey{"key-new", "hash-2"}), "Create").task;
    Must(store_->Cancel(kTenant, done.task_id, kT0 + 10), "Cancel");

    ASSERT_EQ(Must(store_->PruneFinished(kT0 + 1000, 100), "PruneFinished"), 1);

    EXPECT_EQ(SqlValue("SELECT count(*) FROM task_texts"), "1");
    EXPECT_EQ(SqlValue("SELECT task_id FROM task_texts"), kept.task_id);
    EXPECT_EQ(SqlValue("SELECT count(*) FROM idempotency_keys"), "1");
    EXPECT_EQ(SqlValue("SELECT idempotency_key FROM idempotency_keys"), "key-new");
    const CreateOutcome replay =
        Must(store_->Create(MakeTask(kT0 + 2000), IdempotencyKey{"key-new", "hash-2"}), "Create");
    EXPECT_EQ(replay.disposition, CreateDisposition::kReplayed);
    EXPECT_EQ(replay.task.task_id, kept.task_id);
}

// Behaviour specific to PostgreSQL

TEST_F(PostgresTaskStoreTest, CreateRejectsIdThatIsNoUuid) {
    for (const char* id : {"not-a-uuid", "0190A3B4-1C2D-7E8F-9A0B-1C2D3E4F5A6B", ""}) {
        NewTask task = MakeTask(kT0);
        task.task_id = id;

        Result<CreateOutcome> outcome = store_->Create(task, std::nullopt);

        ASSERT_FALSE(outcome.ok()) << id;
        EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument) << id;
    }
}

TEST_F(PostgresTaskStoreTest, IdsThatAreNoUuidNameNoTask) {
    const Task task = Add(MakeTask(kT0));
    std::string upper = task.task_id;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    const Lease lease = ClaimOne("worker-1", kT0 + 10);

    for (const std::string& id : {upper, std::string("nonsense"), std::string("")}) {
        EXPECT_EQ(store_->Get(kTenant, id, false).status().code(), StatusCode::kNotFound) << id;
        EXPECT_EQ(store_->Cancel(kTenant, id, kT0 + 20).status().code(), StatusCode::kNotFound)
            << id;
        EXPECT_EQ(store_->Redrive(kTenant, id, kT0 + 20).status().code(), StatusCode::kNotFound)
            << id;
        EXPECT_EQ(
            Must(store_->Complete({id, lease.owner, lease.attempt}, "{}", kT0 + 20), "Complete"),
            FenceOutcome::kLost)
            << id;
    }
    EXPECT_TRUE(Must(store_->GetStatuses({upper, "nonsense"}), "GetStatuses").empty());
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kProcessing);
}

TEST_F(PostgresTaskStoreTest, FailStoresUnstorableMessageBytesAsReplacement) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    const std::string message("bad \xff byte and a \0 nul, \xc3\xa9 kept", 31);

    ASSERT_EQ(
        Must(store_->Fail(lease, {"processing_error", message}, std::nullopt, kT0 + 20), "Fail"),
        FenceOutcome::kApplied);

    const Task stored = Fetch(task.task_id);
    ASSERT_TRUE(stored.error.has_value());
    EXPECT_EQ(stored.error->message, "bad \xef\xbf\xbd byte and a \xef\xbf\xbd nul, \xc3\xa9 kept");
}

TEST_F(PostgresTaskStoreTest, FencedWritesOnUnleasedTasksAreLost) {
    // One task in each state that no lease holds.
    const Task pending = Add(MakeTask(kT0));
    const Task completed = Add(MakeTask(kT0 + 1));
    const Task failed = Add(MakeTask(kT0 + 2));
    const Task cancelled = Add(MakeTask(kT0 + 3));
    std::vector<ClaimedTask> claimed =
        Must(store_->Claim("worker-1", 4, kT0 + 10, kLease), "Claim");
    ASSERT_EQ(claimed.size(), 4u);
    ASSERT_TRUE(store_->HandBack(claimed[0].lease, kT0 + 11).ok());
    ASSERT_TRUE(store_->Complete(claimed[1].lease, "{}", kT0 + 11).ok());
    ASSERT_TRUE(
        store_->Fail(claimed[2].lease, {"invalid_input", "x"}, std::nullopt, kT0 + 11).ok());
    ASSERT_TRUE(store_->Cancel(kTenant, cancelled.task_id, kT0 + 11).ok());
    const std::map<std::string, TaskStatus> expected = {
        {pending.task_id, TaskStatus::kPending},
        {completed.task_id, TaskStatus::kCompleted},
        {failed.task_id, TaskStatus::kFailed},
        {cancelled.task_id, TaskStatus::kCancelled},
    };

    for (const auto& [id, status] : expected) {
        for (const int attempt : {0, 1}) {
            const Lease lease{id, "worker-1", attempt};
            EXPECT_EQ(Must(store_->Complete(lease, "{}", kT0 + 20), "Complete"),
                      FenceOutcome::kLost)
                << id;
            EXPECT_EQ(Must(store_->Fail(lease, {"timeout", "x"}, kT0 + 30, kT0 + 20), "Fail"),
                      FenceOutcome::kLost)
                << id;
            EXPECT_EQ(Must(store_->Fail(lease, {"timeout", "x"}, std::nullopt, kT0 + 20), "Fail"),
                      FenceOutcome::kLost)
                << id;
            EXPECT_EQ(Must(store_->HandBack(lease, kT0 + 20), "HandBack"), FenceOutcome::kLost)
                << id;
        }
        EXPECT_EQ(Fetch(id).status, status) << id;
    }
}

TEST_F(PostgresTaskStoreTest, ReapReportsIdsOfEachOutcome) {
    const Task retried = Add(MakeTask(kT0));
    const Task exhausted = Add(MakeTask(kT0 + 1, kTenant, "t", "text.analyze", 1));
    ASSERT_EQ(Must(store_->Claim("worker-1", 2, kT0 + 10, 1000ms), "Claim").size(), 2u);

    const ReapOutcome reaped = Must(store_->ReapExpired(kT0 + 5000, 10, NoBackoff), "Reap");

    EXPECT_EQ(reaped.requeued, 1);
    EXPECT_EQ(reaped.failed, 1);
    EXPECT_EQ(reaped.requeued_ids, std::vector<std::string>{retried.task_id});
    EXPECT_EQ(reaped.failed_ids, std::vector<std::string>{exhausted.task_id});
}

TEST_F(PostgresTaskStoreTest, ReapOfNothingIsEmpty) {
    const ReapOutcome reaped = Must(store_->ReapExpired(kT0, 10, NoBackoff), "Reap");

    EXPECT_EQ(reaped.requeued + reaped.failed, 0);
    EXPECT_TRUE(reaped.requeued_ids.empty());
    EXPECT_TRUE(reaped.failed_ids.empty());
}

// Task counts

// PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED.
using StateCounts = std::array<std::int64_t, 5>;

TEST_F(PostgresTaskStoreTest, ClaimOfManyTasksAppendsOneChange) {
    for (int i = 0; i < 300; ++i) {
        Add(MakeTask(kT0 + i));
    }
    const std::int64_t before = ChangeRows();
    ASSERT_EQ(ClaimAll("worker-1", kT0 + 1000, 250).size(), 250u);

    EXPECT_EQ(ChangeRows() - before, 1);
}

TEST_F(PostgresTaskStoreTest, CompleteBatchAppendsOneChange) {
    for (int i = 0; i < 40; ++i) {
        Add(MakeTask(kT0 + i));
    }
    const std::vector<ClaimedTask> claimed = ClaimAll("worker-1", kT0 + 1000, 40);
    ASSERT_EQ(claimed.size(), 40u);
    std::vector<CompleteRequest> requests;
    for (const ClaimedTask& task : claimed) {
        requests.push_back(CompleteRequest{&task.lease, R"({"word_count":1})"});
    }
    const std::int64_t before = ChangeRows();

    for (const Result<FenceOutcome>& outcome : store_->CompleteBatch(requests, kT0 + 2000)) {
        ASSERT_TRUE(outcome.ok()) << outcome.status().message();
        EXPECT_EQ(*outcome, FenceOutcome::kApplied);
    }

    EXPECT_EQ(ChangeRows() - before, 1);
    EXPECT_EQ(Must(store_->Stats(), "Stats").by_status, (StateCounts{0, 0, 40, 0, 0}));
}

TEST_F(PostgresTaskStoreTest, StatsFoldsChangesIntoTaskCounts) {
    for (int i = 0; i < 30; ++i) {
        Add(MakeTask(kT0 + i));
    }
    ASSERT_EQ(ClaimAll("worker-1", kT0 + 1000, 20).size(), 20u);
    ASSERT_GT(ChangeRows(), 0);

    const TaskStats stats = Must(store_->Stats(), "Stats");

    EXPECT_EQ(stats.by_status, (StateCounts{10, 20, 0, 0, 0}));
    EXPECT_EQ(ChangeRows(), 0);
    EXPECT_EQ(Must(store_->Stats(), "Stats").by_status, (StateCounts{10, 20, 0, 0, 0}));
}

TEST_F(PostgresTaskStoreTest, ReapFoldsChangesIntoTaskCounts) {
    Add(MakeTask(kT0));
    Add(MakeTask(kT0 + 1));
    ASSERT_GT(ChangeRows(), 0);

    Must(store_->ReapExpired(kT0 + 10, 10, NoBackoff), "Reap");

    EXPECT_EQ(ChangeRows(), 0);
    EXPECT_EQ(Must(store_->Stats(), "Stats").by_status, (StateCounts{2, 0, 0, 0, 0}));
}

TEST_F(PostgresTaskStoreTest, StatementThatMovesNoTaskAppendsNoChange) {
    Add(MakeTask(kT0));
    ClaimOne("worker-1", kT0 + 10);
    Must(store_->Stats(), "Stats");

    Must(store_->RenewLeases("worker-1", kT0 + 20, kLease), "RenewLeases");

    EXPECT_EQ(ChangeRows(), 0);
}

TEST_F(PostgresTaskStoreTest, LongTextIsStoredOutOfLine) {
    std::string text(3'000'000, 'a');
    text[1'500'000] = '\0';
    const Task task = Add(MakeTask(kT0, kTenant, text));

    const Task fetched = Must(store_->Get(kTenant, task.task_id, true), "Get");

    ASSERT_TRUE(fetched.text.has_value());
    EXPECT_EQ(*fetched.text, text);
    EXPECT_EQ(fetched.text_bytes, 3'000'000);
}

}  // namespace
}  // namespace conveyor
