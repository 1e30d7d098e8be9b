#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.hpp"
#include "storage/postgres/postgres_task_store.hpp"
#include "storage/postgres/postgres_test_support.hpp"

// Failures of the server and of connections: a restart, a session the
// server ends, a full pool, and deadlocks and serialization failures that a
// trigger injects.
namespace conveyor {
namespace {

using postgres_test::Must;
using namespace std::chrono_literals;

constexpr UnixMillis kT0 = 1'750'000'000'000;
constexpr char kTenant[] = "acme";

NewTask MakeTask(UnixMillis created_at) {
    NewTask task;
    task.task_id = NewUuidV7(created_at);
    task.tenant = kTenant;
    task.type = "text.analyze";
    task.params_json = "{}";
    task.text = "words";
    task.max_attempts = 3;
    task.created_at = created_at;
    return task;
}

class PostgresFaultTest : public postgres_test::DatabaseTest {
  protected:
    void TearDown() override {
        // A failed test may leave the server stopped; later tests need it.
        if (postgres_test::TestCluster* cluster = postgres_test::SharedCluster()) {
            EXPECT_TRUE(cluster->StartServer().ok());
        }
        DatabaseTest::TearDown();
    }

    // Returns the pid of a session of the store that waits for a lock, or ""
    // when none does after about 10 s.
    std::string AwaitBlockedStoreSession() {
        for (int round = 0; round < 500; ++round) {
            const std::string pid = SqlValue(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'conveyor' AND wait_event_type = 'Lock'");
            if (!pid.empty()) {
                return pid;
            }
            std::this_thread::sleep_for(20ms);
        }
        ADD_FAILURE() << "no session of the store waited for a lock";
        return "";
    }

    // Makes the next `failures` UPDATE statements on tasks fail with
    // `sqlstate`. The count lives in a sequence, because nextval() is not
    // rolled back with the failed statement.
    void InjectUpdateFailures(int failures, const std::string& sqlstate) {
        const Result<postgres::QueryResult> created = Sql().ExecuteScript(
            "CREATE SEQUENCE update_attempts;"
            " CREATE FUNCTION fail_updates() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN"
            "   IF nextval('update_attempts') <= " +
            std::to_string(failures) +
            " THEN RAISE EXCEPTION 'injected failure' USING ERRCODE = '" + sqlstate +
            "'; END IF;"
            "   RETURN NULL;"
            " END $$;"
            " CREATE TRIGGER fail_updates BEFORE UPDATE ON tasks"
            " FOR EACH STATEMENT EXECUTE FUNCTION fail_updates()");
        ASSERT_TRUE(created.ok()) << created.status().message();
    }

    // Starts a transaction on the test's own connection that locks the row
    // of `task_id`.
    void LockRow(const std::string& task_id) {
        ASSERT_TRUE(Sql().ExecuteScript("BEGIN").ok());
        ASSERT_TRUE(
            Sql()
                .ExecuteScript("SELECT 1 FROM tasks WHERE task_id = '" + task_id + "' FOR UPDATE")
                .ok());
    }
};

TEST_F(PostgresFaultTest, RestartIsUnavailableThenRecovers) {
    postgres_test::TestCluster* cluster = postgres_test::SharedCluster();
    std::unique_ptr<PostgresTaskStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    const Task task = Must(store->Create(MakeTask(kT0), std::nullopt), "Create").task;
    std::unique_ptr<ChangeFeed> feed = store->OpenChangeFeed();
    ASSERT_NE(feed, nullptr);
    ASSERT_TRUE(feed->Wait(10ms).ok());

    ASSERT_TRUE(cluster->Stop().ok());
    const Status ping_down = store->Ping();
    const Result<Task> get_down = store->Get(kTenant, task.task_id, false);
    const Result<CreateOutcome> create_down = store->Create(MakeTask(kT0 + 1), std::nullopt);
    const Result<std::vector<ClaimedTask>> claim_down = store->Claim("worker-1", 1, kT0, 30s);
    const Result<std::vector<Change>> feed_down = feed->Wait(1s);
    ASSERT_TRUE(cluster->StartServer().ok());

    EXPECT_EQ(ping_down.code(), StatusCode::kUnavailable) << ping_down.message();
    EXPECT_EQ(get_down.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(create_down.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(claim_down.status().code(), StatusCode::kUnavailable);
    ASSERT_FALSE(feed_down.ok());
    EXPECT_EQ(feed_down.status().code(), StatusCode::kUnavailable);

    // The same store and feed work again without being reopened.
    const Status ping_up = store->Ping();
    EXPECT_TRUE(ping_up.ok()) << ping_up.message();
    const Result<Task> get_up = store->Get(kTenant, task.task_id, false);
    ASSERT_TRUE(get_up.ok()) << get_up.status().message();
    EXPECT_EQ(get_up->status, TaskStatus::kPending);
    EXPECT_TRUE(store->Create(MakeTask(kT0 + 2), std::nullopt).ok());
    Result<std::vector<Change>> feed_up = feed->Wait(1s);
    EXPECT_TRUE(feed_up.ok()) << feed_up.status().message();
}

TEST_F(PostgresFaultTest, RestartWithIdlePoolLosesNoCall) {
    postgres_test::TestCluster* cluster = postgres_test::SharedCluster();
    std::unique_ptr<PostgresTaskStore> store = OpenStore(4);
    ASSERT_NE(store, nullptr);
    const Task task = Must(store->Create(MakeTask(kT0), std::nullopt), "Create").task;

    ASSERT_TRUE(cluster->Restart().ok());

    // Every pooled connection died with the server; each is replaced before
    // use because its socket shows the end of file.
    for (int i = 0; i < 8; ++i) {
        const Result<Task> fetched = store->Get(kTenant, task.task_id, false);
        ASSERT_TRUE(fetched.ok()) << "call " << i << ": " << fetched.status().message();
    }
}

TEST_F(PostgresFaultTest, TerminatedIdleSessionsAreReplaced) {
    std::unique_ptr<PostgresTaskStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Ping().ok());

    EXPECT_EQ(SqlValue("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                       " WHERE datname = current_database() AND application_name = 'conveyor'"),
              "1");

    const Status ping = store->Ping();
    EXPECT_TRUE(ping.ok()) << ping.message();
}

TEST_F(PostgresFaultTest, SessionEndedMidCallIsUnavailableThenReplaced) {
    std::unique_ptr<PostgresTaskStore> store = OpenStore(1);
    ASSERT_NE(store, nullptr);
    const Task task = Must(store->Create(MakeTask(kT0), std::nullopt), "Create").task;
    LockRow(task.task_id);
    std::future<Result<Task>> cancel = std::async(
        std::launch::async, [&] { return store->Cancel(kTenant, task.task_id, kT0 + 10); });

    const std::string pid = AwaitBlockedStoreSession();
    ASSERT_FALSE(pid.empty());
    EXPECT_EQ(SqlValue("SELECT pg_terminate_backend(" + pid + ", 5000)"), "t");
    ASSERT_EQ(cancel.wait_for(10s), std::future_status::ready);
    const Result<Task> cancelled = cancel.get();
    ASSERT_TRUE(Sql().ExecuteScript("ROLLBACK").ok());

    ASSERT_FALSE(cancelled.ok());
    EXPECT_EQ(cancelled.status().code(), StatusCode::kUnavailable) << cancelled.status().message();
    const Status ping = store->Ping();
    EXPECT_TRUE(ping.ok()) << "the only connection should be replaced: " << ping.message();
    EXPECT_EQ(Must(store->Get(kTenant, task.task_id, false), "Get").status, TaskStatus::kPending);
}

TEST_F(PostgresFaultTest, FullPoolIsUnavailableAfterTimeout) {
    Result<std::unique_ptr<PostgresTaskStore>> opened = PostgresTaskStore::Open(
        PostgresOptions{.url = database_.url, .pool_size = 1, .acquire_timeout = 200ms});
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    std::unique_ptr<PostgresTaskStore> store = std::move(*opened);
    ASSERT_TRUE(store->Migrate().ok());
    const Task task = Must(store->Create(MakeTask(kT0), std::nullopt), "Create").task;
    LockRow(task.task_id);
    std::future<Result<Task>> cancel = std::async(
        std::launch::async, [&] { return store->Cancel(kTenant, task.task_id, kT0 + 10); });
    ASSERT_FALSE(AwaitBlockedStoreSession().empty());

    const Status ping = store->Ping();
    ASSERT_TRUE(Sql().ExecuteScript("ROLLBACK").ok());
    ASSERT_EQ(cancel.wait_for(10s), std::future_status::ready);
    const Result<Task> cancelled = cancel.get();

    EXPECT_EQ(ping.code(), StatusCode::kUnavailable) << ping.message();
    ASSERT_TRUE(cancelled.ok()) << cancelled.status().message();
    EXPECT_EQ(cancelled->status, TaskStatus::kCancelled);
}

TEST_F(PostgresFaultTest, DeadlockIsRetried) {
    std::unique_ptr<PostgresTaskStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    Must(store->Create(MakeTask(kT0), std::nullopt), "Create");
    ASSERT_EQ(Must(store->Claim("worker-1", 1, kT0 + 10, 30s), "Claim").size(), 1u);
    InjectUpdateFailures(2, "40P01");

    const Result<std::vector<std::string>> renewed = store->RenewLeases("worker-1", kT0 + 20, 30s);

    ASSERT_TRUE(renewed.ok()) << renewed.status().message();
    EXPECT_EQ(renewed->size(), 1u);
    EXPECT_EQ(SqlValue("SELECT last_value FROM update_attempts"), "3")
        << "two failed attempts and one that landed";
}

TEST_F(PostgresFaultTest, SerializationFailureRerunsWholeTransaction) {
    std::unique_ptr<PostgresTaskStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    const Task task = Must(store->Create(MakeTask(kT0), std::nullopt), "Create").task;
    ASSERT_EQ(Must(store->Claim("worker-1", 1, kT0 + 10, 1s), "Claim").size(), 1u);
    InjectUpdateFailures(1, "40001");

    // The reaper's transaction locks the row, then its UPDATE fails; the
    // rerun must lock and find the row again.
    const Result<ReapOutcome> reaped =
        store->ReapExpired(kT0 + 5000, 10, [](int) { return Millis{0}; });

    ASSERT_TRUE(reaped.ok()) << reaped.status().message();
    EXPECT_EQ(reaped->requeued_ids, std::vector<std::string>{task.task_id});
    EXPECT_EQ(SqlValue("SELECT last_value FROM update_attempts"), "2");
    EXPECT_EQ(Must(store->Get(kTenant, task.task_id, false), "Get").status, TaskStatus::kPending);
}

TEST_F(PostgresFaultTest, RepeatedDeadlocksAreUnavailable) {
    std::unique_ptr<PostgresTaskStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    const Task task = Must(store->Create(MakeTask(kT0), std::nullopt), "Create").task;
    InjectUpdateFailures(100, "40P01");

    const Result<Task> cancelled = store->Cancel(kTenant, task.task_id, kT0 + 10);

    ASSERT_FALSE(cancelled.ok());
    EXPECT_EQ(cancelled.status().code(), StatusCode::kUnavailable) << cancelled.status().message();
    EXPECT_EQ(SqlValue("SELECT last_value FROM update_attempts"), "3") << "three attempts in all";
}

}  // namespace
}  // namespace conveyor
