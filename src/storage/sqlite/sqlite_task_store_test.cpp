#include "storage/sqlite/sqlite_task_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.hpp"
#include "storage/sqlite/sqlite_connection.hpp"
#include "storage/sqlite/sqlite_schema.hpp"
#include "storage/sqlite/sqlite_test_support.hpp"

namespace conveyor {
namespace {

using sqlite_test::Must;
using sqlite_test::TempDir;
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

class SqliteTaskStoreTest : public testing::Test {
  protected:
    void SetUp() override { store_ = OpenStore(); }

    std::string DatabasePath() const { return (dir_.path() / "tasks.db").string(); }

    std::unique_ptr<SqliteTaskStore> OpenStore(Millis busy_timeout = 5s) {
        Result<std::unique_ptr<SqliteTaskStore>> opened = SqliteTaskStore::Open(
            SqliteOptions{.path = DatabasePath(), .busy_timeout = busy_timeout});
        if (!opened.ok()) {
            ADD_FAILURE() << "Open failed: " << opened.status().message();
            return nullptr;
        }
        Status migrated = (*opened)->Migrate();
        EXPECT_TRUE(migrated.ok()) << migrated.message();
        return std::move(*opened);
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

    TempDir dir_;
    std::unique_ptr<SqliteTaskStore> store_;
};

// Opening, migrating and the cursor key

TEST_F(SqliteTaskStoreTest, MigrationsAreRecordedOnce) {
    ASSERT_TRUE(store_->Migrate().ok());

    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(DatabasePath().c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*), max(version) FROM schema_migrations", -1,
                                 &stmt, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(stmt, 0), sqlite::LatestSchemaVersion());
    EXPECT_EQ(sqlite3_column_int(stmt, 1), sqlite::LatestSchemaVersion());
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

TEST(SqliteTaskStoreOpen, ConcurrentMigrationsAgree) {
    TempDir dir;
    const std::string path = (dir.path() / "shared.db").string();
    constexpr int kProcesses = 6;
    std::vector<std::string> keys(kProcesses);
    std::vector<std::string> errors(kProcesses);
    std::latch start(kProcesses);
    std::vector<std::thread> threads;
    for (int i = 0; i < kProcesses; ++i) {
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            auto store = SqliteTaskStore::Open(SqliteOptions{.path = path});
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
}

TEST(SqliteTaskStoreOpen, CursorKeyBeforeMigrateIsInternal) {
    TempDir dir;
    auto store = SqliteTaskStore::Open(SqliteOptions{.path = (dir.path() / "a.db").string()});
    ASSERT_TRUE(store.ok()) << store.status().message();

    Result<std::string> key = (*store)->CursorKey();

    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.status().code(), StatusCode::kInternal);
}

TEST(SqliteTaskStoreOpen, RejectsEmptyPath) {
    auto store = SqliteTaskStore::Open(SqliteOptions{.path = ""});

    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
}

TEST(SqliteTaskStoreOpen, RejectsInMemoryDatabase) {
    auto store = SqliteTaskStore::Open(SqliteOptions{.path = ":memory:"});

    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
}

TEST(SqliteTaskStoreOpen, MissingDirectoryIsUnavailable) {
    TempDir dir;
    const std::string path = (dir.path() / "no-such-dir" / "a.db").string();

    auto store = SqliteTaskStore::Open(SqliteOptions{.path = path});

    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(store.status().message().find(path), std::string::npos)
        << "the log message should name the file: " << store.status().message();
}

// Errors

TEST(SqliteErrorStatus, TransientCodesAreUnavailable) {
    for (const int code : {SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, SQLITE_CANTOPEN,
                           SQLITE_IOERR, SQLITE_IOERR_FSYNC, SQLITE_FULL}) {
        EXPECT_EQ(sqlite::ErrorStatus(code, "test", "detail").code(), StatusCode::kUnavailable)
            << "SQLite code " << code;
    }
}

TEST(SqliteErrorStatus, OtherCodesAreInternal) {
    for (const int code : {SQLITE_ERROR, SQLITE_CONSTRAINT_UNIQUE, SQLITE_CORRUPT, SQLITE_NOTADB,
                           SQLITE_MISMATCH, SQLITE_READONLY}) {
        EXPECT_EQ(sqlite::ErrorStatus(code, "test", "detail").code(), StatusCode::kInternal)
            << "SQLite code " << code;
    }
}

// A second connection that holds the write lock, as another process would.
class WriteLockHolder {
  public:
    explicit WriteLockHolder(const std::string& path) {
        EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
        EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    }
    ~WriteLockHolder() {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        sqlite3_close(db_);
    }
    WriteLockHolder(const WriteLockHolder&) = delete;
    WriteLockHolder& operator=(const WriteLockHolder&) = delete;

  private:
    sqlite3* db_ = nullptr;
};

TEST_F(SqliteTaskStoreTest, BusyWriteLockIsUnavailable) {
    store_ = OpenStore(100ms);
    Result<CreateOutcome> created = Status::Internal("not run");
    {
        WriteLockHolder other_process(DatabasePath());
        created = store_->Create(MakeTask(kT0), std::nullopt);
    }

    ASSERT_FALSE(created.ok());
    EXPECT_EQ(created.status().code(), StatusCode::kUnavailable);
    EXPECT_TRUE(store_->Create(MakeTask(kT0), std::nullopt).ok())
        << "the store should recover once the lock is gone";
}

TEST_F(SqliteTaskStoreTest, ReadsDoNotWaitForWriteLock) {
    const Task task = Add(MakeTask(kT0));
    store_ = OpenStore(100ms);
    WriteLockHolder other_process(DatabasePath());

    Result<Task> fetched = store_->Get(kTenant, task.task_id, true);

    ASSERT_TRUE(fetched.ok()) << fetched.status().message();
    EXPECT_EQ(fetched->task_id, task.task_id);
}

// Group commit

TEST_F(SqliteTaskStoreTest, ConcurrentCreatesAllLand) {
    constexpr int kThreads = 16;
    constexpr int kPerThread = 40;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kPerThread; ++i) {
                if (!store_->Create(MakeTask(kT0 + t * kPerThread + i), std::nullopt).ok()) {
                    ++failures;
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }

    EXPECT_EQ(failures.load(), 0);
    ListQuery query;
    query.tenant = kTenant;
    query.limit = 1000;
    EXPECT_EQ(Must(store_->List(query), "List").items.size(),
              static_cast<std::size_t>(kThreads * kPerThread));
}

TEST_F(SqliteTaskStoreTest, DuplicateIdFailsOnlyItsOwnSubmission) {
    const NewTask first = MakeTask(kT0);
    NewTask duplicate = MakeTask(kT0 + 1);
    duplicate.task_id = first.task_id;
    const NewTask other = MakeTask(kT0 + 2);
    std::optional<Result<CreateOutcome>> results[3];

    std::thread a([&] { results[0] = store_->Create(first, std::nullopt); });
    std::thread b([&] { results[1] = store_->Create(duplicate, std::nullopt); });
    std::thread c([&] { results[2] = store_->Create(other, std::nullopt); });
    a.join();
    b.join();
    c.join();

    const int created = (results[0]->ok() ? 1 : 0) + (results[1]->ok() ? 1 : 0);
    EXPECT_EQ(created, 1) << "exactly one of the two submissions with one id lands";
    const Result<CreateOutcome>& loser = results[0]->ok() ? *results[1] : *results[0];
    EXPECT_EQ(loser.status().code(), StatusCode::kConflict);
    EXPECT_TRUE(results[2]->ok()) << "a task in the same batch is unaffected";
}

}  // namespace
}  // namespace conveyor
