// Checks that every TaskStore backend behaves alike. Each case runs once per
// backend, on a fresh, migrated store: SQLite on a file in a temporary
// directory, PostgreSQL on a database of its own in the shared test cluster.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.hpp"
#include "storage/postgres/postgres_task_store.hpp"
#include "storage/postgres/postgres_test_support.hpp"
#include "storage/sqlite/sqlite_task_store.hpp"
#include "storage/sqlite/sqlite_test_support.hpp"
#include "storage/task_store.hpp"

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

ListQuery QueryFor(std::string tenant, int limit = 20) {
    ListQuery query;
    query.tenant = std::move(tenant);
    query.limit = limit;
    return query;
}

// A factory of stores on one test's data: a SQLite file or a PostgreSQL
// database. Every store it opens shares that data, which is deleted with it.
class StoreFactory {
  public:
    virtual ~StoreFactory() = default;

    // Creates the empty database when the backend needs one before opening.
    // Records a fatal failure when that fails.
    virtual void Prepare() = 0;

    // Opens a store on the data and migrates it. Records a failure and
    // returns nullptr when either step fails.
    virtual std::unique_ptr<TaskStore> OpenStore() = 0;
};

// Returns the opened store after migrating it, or records a failure and
// returns nullptr.
template <typename Store>
std::unique_ptr<TaskStore> Migrated(Result<std::unique_ptr<Store>> opened) {
    if (!opened.ok()) {
        ADD_FAILURE() << "Open failed: " << opened.status().message();
        return nullptr;
    }
    Status migrated = (*opened)->Migrate();
    EXPECT_TRUE(migrated.ok()) << migrated.message();
    return std::move(*opened);
}

class SqliteFactory : public StoreFactory {
  public:
    void Prepare() override {}

    std::unique_ptr<TaskStore> OpenStore() override {
        return Migrated(SqliteTaskStore::Open(
            SqliteOptions{.path = (dir_.path() / "tasks.db").string(), .busy_timeout = 5s}));
    }

  private:
    sqlite_test::TempDir dir_;
};

class PostgresFactory : public StoreFactory {
  public:
    ~PostgresFactory() override {
        postgres_test::TestCluster* cluster = postgres_test::SharedCluster();
        if (cluster != nullptr && !database_.name.empty()) {
            Status dropped = cluster->DropDatabase(database_.name);
            EXPECT_TRUE(dropped.ok()) << dropped.message();
        }
    }

    void Prepare() override {
        postgres_test::TestCluster* cluster = postgres_test::SharedCluster();
        ASSERT_NE(cluster, nullptr) << "cannot start the PostgreSQL test cluster";
        Result<postgres_test::TestDatabase> created = cluster->CreateDatabase();
        ASSERT_TRUE(created.ok()) << created.status().message();
        database_ = *created;
    }

    std::unique_ptr<TaskStore> OpenStore() override {
        return Migrated(PostgresTaskStore::Open(PostgresOptions{.url = database_.url}));
    }

  private:
    postgres_test::TestDatabase database_;
};

// A backend under test: its name, which ends each test's name, and the
// function that makes a factory for one test.
struct Backend {
    const char* name;
    std::unique_ptr<StoreFactory> (*make_factory)();
};

std::string BackendName(const testing::TestParamInfo<Backend>& info) {
    return info.param.name;
}

// GoogleTest prints the parameter beside each test's name.
void PrintTo(const Backend& backend, std::ostream* out) {
    *out << backend.name;
}

class StoreTest : public testing::TestWithParam<Backend> {
  protected:
    void SetUp() override {
        factory_ = GetParam().make_factory();
        factory_->Prepare();
        if (HasFatalFailure()) {
            return;
        }
        store_ = OpenStore();
        ASSERT_NE(store_, nullptr);
    }

    void TearDown() override {
        store_.reset();
        factory_.reset();
    }

    // Opens another store on this test's data.
    std::unique_ptr<TaskStore> OpenStore() { return factory_->OpenStore(); }

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

    std::unique_ptr<StoreFactory> factory_;
    std::unique_ptr<TaskStore> store_;
};

// Opening, migrating and the cursor key

class Setup : public StoreTest {};

TEST_P(Setup, MigrateTwiceIsHarmless) {
    const Task task = Add(MakeTask(kT0));
    const std::string key = Must(store_->CursorKey(), "CursorKey");

    Status again = store_->Migrate();

    ASSERT_TRUE(again.ok()) << again.message();
    EXPECT_EQ(Fetch(task.task_id).task_id, task.task_id);
    EXPECT_EQ(Must(store_->CursorKey(), "CursorKey"), key);
}

TEST_P(Setup, CursorKeyIsStableAcrossReopen) {
    const std::string first = Must(store_->CursorKey(), "CursorKey");

    store_.reset();
    store_ = OpenStore();
    const std::string second = Must(store_->CursorKey(), "CursorKey");

    EXPECT_EQ(first.size(), 32u);
    EXPECT_EQ(second, first);
}

TEST_P(Setup, PingSucceeds) {
    Status status = store_->Ping();

    EXPECT_TRUE(status.ok()) << status.message();
}

// Create and Get

class CreateAndGet : public StoreTest {};

TEST_P(CreateAndGet, StoresPendingTask) {
    NewTask task = MakeTask(kT0);
    task.metadata_json = R"({"customer":"acme"})";

    CreateOutcome outcome = Must(store_->Create(task, std::nullopt), "Create");
    const Task stored = Fetch(task.task_id);

    EXPECT_EQ(outcome.disposition, CreateDisposition::kCreated);
    EXPECT_EQ(outcome.task.task_id, task.task_id);
    EXPECT_EQ(outcome.task.status, TaskStatus::kPending);
    EXPECT_EQ(stored.task_id, task.task_id);
    EXPECT_EQ(stored.tenant, kTenant);
    EXPECT_EQ(stored.type, "text.analyze");
    EXPECT_EQ(stored.status, TaskStatus::kPending);
    EXPECT_EQ(stored.params_json, task.params_json);
    EXPECT_EQ(stored.metadata_json, task.metadata_json);
    EXPECT_EQ(stored.text_bytes, static_cast<std::int64_t>(task.text.size()));
    EXPECT_FALSE(stored.text.has_value());
    EXPECT_EQ(stored.attempts, 0);
    EXPECT_EQ(stored.max_attempts, 3);
    EXPECT_EQ(stored.created_at, kT0);
    EXPECT_EQ(stored.updated_at, kT0);
    EXPECT_FALSE(stored.started_at.has_value());
    EXPECT_FALSE(stored.finished_at.has_value());
    EXPECT_FALSE(stored.next_attempt_at.has_value());
    EXPECT_FALSE(stored.result_json.has_value());
    EXPECT_FALSE(stored.error.has_value());
}

TEST_P(CreateAndGet, WithoutMetadataStoresNull) {
    const Task task = Add(MakeTask(kT0));

    EXPECT_FALSE(Fetch(task.task_id).metadata_json.has_value());
}

TEST_P(CreateAndGet, TextRoundTripsEveryByte) {
    const std::vector<std::string> texts = {
        std::string("nul\0inside", 10),
        std::string("\0", 1),
        std::string("invalid \xff\xfe utf-8 \xc3", 16),
        "",
        std::string(300'000, 'x') + std::string("\0end", 4),
    };
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const Task created = Add(MakeTask(kT0 + static_cast<UnixMillis>(i), kTenant, texts[i]));

        const Task fetched = Must(store_->Get(kTenant, created.task_id, true), "Get");

        ASSERT_TRUE(fetched.text.has_value()) << "text " << i;
        EXPECT_EQ(*fetched.text, texts[i]) << "text " << i;
        EXPECT_EQ(fetched.text_bytes, static_cast<std::int64_t>(texts[i].size())) << "text " << i;
    }
}

TEST_P(CreateAndGet, ClaimedTextRoundTripsEveryByte) {
    const std::string text("a\0b\xff", 4);
    Add(MakeTask(kT0, kTenant, text));

    std::vector<ClaimedTask> claimed = ClaimAll("worker-1", kT0);

    ASSERT_EQ(claimed.size(), 1u);
    ASSERT_TRUE(claimed[0].task.text.has_value());
    EXPECT_EQ(*claimed[0].task.text, text);
}

TEST_P(CreateAndGet, MissingTaskIsNotFound) {
    Result<Task> task = store_->Get(kTenant, NewUuidV7(kT0), false);

    ASSERT_FALSE(task.ok());
    EXPECT_EQ(task.status().code(), StatusCode::kNotFound);
}

TEST_P(CreateAndGet, OtherTenantsTaskIsNotFound) {
    const Task task = Add(MakeTask(kT0, "other"));

    Result<Task> plain = store_->Get(kTenant, task.task_id, false);
    Result<Task> with_text = store_->Get(kTenant, task.task_id, true);

    ASSERT_FALSE(plain.ok());
    EXPECT_EQ(plain.status().code(), StatusCode::kNotFound);
    ASSERT_FALSE(with_text.ok());
    EXPECT_EQ(with_text.status().code(), StatusCode::kNotFound);
}

TEST_P(CreateAndGet, DuplicateTaskIdIsConflict) {
    const NewTask task = MakeTask(kT0);
    Add(task);
    NewTask again = MakeTask(kT0 + 5);
    again.task_id = task.task_id;

    Result<CreateOutcome> outcome = store_->Create(again, std::nullopt);

    ASSERT_FALSE(outcome.ok());
    EXPECT_EQ(outcome.status().code(), StatusCode::kConflict);
    EXPECT_EQ(Fetch(task.task_id).created_at, kT0) << "the first task must stay as it was";
}

TEST_P(CreateAndGet, DuplicateTaskIdWithKeyLeavesKeyFree) {
    const NewTask task = MakeTask(kT0);
    Add(task);
    NewTask again = MakeTask(kT0 + 5);
    const std::string fresh_id = again.task_id;
    again.task_id = task.task_id;
    const IdempotencyKey key{"key-1", "hash-1"};

    Result<CreateOutcome> collided = store_->Create(again, key);
    again.task_id = fresh_id;
    Result<CreateOutcome> retried = store_->Create(again, key);

    ASSERT_FALSE(collided.ok());
    EXPECT_EQ(collided.status().code(), StatusCode::kConflict);
    ASSERT_TRUE(retried.ok()) << retried.status().message();
    EXPECT_EQ(retried->disposition, CreateDisposition::kCreated);
    EXPECT_EQ(retried->task.task_id, fresh_id);
}

// Idempotency keys

class Idempotency : public StoreTest {};

TEST_P(Idempotency, SameKeySameHashReplays) {
    const IdempotencyKey key{"key-1", "hash-1"};
    const CreateOutcome first = Must(store_->Create(MakeTask(kT0), key), "Create");

    const CreateOutcome second = Must(store_->Create(MakeTask(kT0 + 10), key), "Create");

    EXPECT_EQ(first.disposition, CreateDisposition::kCreated);
    EXPECT_EQ(second.disposition, CreateDisposition::kReplayed);
    EXPECT_EQ(second.task.task_id, first.task.task_id);
    EXPECT_EQ(second.task.created_at, kT0);
    const TaskPage page = Must(store_->List(QueryFor(kTenant)), "List");
    EXPECT_EQ(page.items.size(), 1u);
}

TEST_P(Idempotency, ReplayReturnsCurrentState) {
    const IdempotencyKey key{"key-1", "hash-1"};
    Must(store_->Create(MakeTask(kT0), key), "Create");
    ClaimOne("worker-1", kT0 + 1);

    const CreateOutcome replay = Must(store_->Create(MakeTask(kT0 + 10), key), "Create");

    EXPECT_EQ(replay.disposition, CreateDisposition::kReplayed);
    EXPECT_EQ(replay.task.status, TaskStatus::kProcessing);
    EXPECT_EQ(replay.task.attempts, 1);
}

TEST_P(Idempotency, SameKeyOtherHashIsKeyReused) {
    Must(store_->Create(MakeTask(kT0), IdempotencyKey{"key-1", "hash-1"}), "Create");

    const CreateOutcome reused =
        Must(store_->Create(MakeTask(kT0 + 10), IdempotencyKey{"key-1", "hash-2"}), "Create");

    EXPECT_EQ(reused.disposition, CreateDisposition::kKeyReused);
    EXPECT_EQ(reused.task.task_id, "");
    const TaskPage page = Must(store_->List(QueryFor(kTenant)), "List");
    EXPECT_EQ(page.items.size(), 1u) << "a reused key must not create a task";
}

TEST_P(Idempotency, KeysAreScopedByTenant) {
    const IdempotencyKey key{"key-1", "hash-1"};
    const CreateOutcome first = Must(store_->Create(MakeTask(kT0, "a"), key), "Create");

    const CreateOutcome second = Must(store_->Create(MakeTask(kT0, "b"), key), "Create");

    EXPECT_EQ(second.disposition, CreateDisposition::kCreated);
    EXPECT_NE(second.task.task_id, first.task.task_id);
}

TEST_P(Idempotency, ConcurrentSameKeyCreatesOneTask) {
    constexpr int kStores = 8;
    constexpr int kThreadsPerStore = 4;
    constexpr int kThreads = kStores * kThreadsPerStore;
    std::vector<std::unique_ptr<TaskStore>> stores;
    for (int i = 0; i < kStores; ++i) {
        stores.push_back(OpenStore());
    }
    std::vector<Result<CreateOutcome>> outcomes(kThreads, Status::Internal("not run"));
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&, i] {
            const NewTask task = MakeTask(kT0 + i);
            start.arrive_and_wait();
            outcomes[i] = stores[i % kStores]->Create(task, IdempotencyKey{"key-1", "hash-1"});
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }

    int created = 0;
    int replayed = 0;
    std::set<std::string> ids;
    for (const Result<CreateOutcome>& outcome : outcomes) {
        ASSERT_TRUE(outcome.ok()) << outcome.status().message();
        created += outcome->disposition == CreateDisposition::kCreated ? 1 : 0;
        replayed += outcome->disposition == CreateDisposition::kReplayed ? 1 : 0;
        ids.insert(outcome->task.task_id);
    }
    EXPECT_EQ(created, 1);
    EXPECT_EQ(replayed, kThreads - 1);
    EXPECT_EQ(ids.size(), 1u) << "every request must get the one task's id";
    const TaskPage page = Must(store_->List(QueryFor(kTenant)), "List");
    EXPECT_EQ(page.items.size(), 1u);
}

// GetStatuses

class GetStatuses : public StoreTest {};

TEST_P(GetStatuses, SpansBatchesAndTenants) {
    constexpr int kTasks = 1100;  // more than one statement batch of 1,000
    std::vector<std::string> ids;
    for (int i = 0; i < kTasks; ++i) {
        ids.push_back(Add(MakeTask(kT0 + i, i % 2 == 0 ? "a" : "b")).task_id);
    }
    ClaimAll("worker-1", kT0 + 10'000, 10);
    std::vector<std::string> requested = ids;
    requested.push_back(NewUuidV7(kT0));  // unknown
    requested.push_back(ids[7]);          // duplicate

    auto statuses = Must(store_->GetStatuses(requested), "GetStatuses");

    std::map<std::string, TaskStatus> by_id(statuses.begin(), statuses.end());
    EXPECT_EQ(statuses.size(), static_cast<std::size_t>(kTasks));
    EXPECT_EQ(by_id.size(), static_cast<std::size_t>(kTasks));
    int processing = 0;
    for (const auto& [id, status] : by_id) {
        processing += status == TaskStatus::kProcessing ? 1 : 0;
    }
    EXPECT_EQ(processing, 10);
    EXPECT_EQ(by_id.count(ids[0]), 1u);
    EXPECT_EQ(by_id.count(ids[kTasks - 1]), 1u);
}

TEST_P(GetStatuses, OfNothingIsEmpty) {
    auto statuses = Must(store_->GetStatuses({}), "GetStatuses");

    EXPECT_TRUE(statuses.empty());
}

// CountPending

class CountPending : public StoreTest {};

TEST_P(CountPending, CountsOnlyPendingTasksOfTenant) {
    for (int i = 0; i < 4; ++i) {
        Add(MakeTask(kT0 + i));
    }
    const Task cancelled = Add(MakeTask(kT0 + 5));
    Add(MakeTask(kT0 + 10, "other"));
    Add(MakeTask(kT0 + 11, "other"));
    ClaimOne("worker-1", kT0 + 100);  // the oldest task, one of acme's
    Must(store_->Cancel(kTenant, cancelled.task_id, kT0 + 100), "Cancel");

    EXPECT_EQ(Must(store_->CountPending(kTenant, 100), "CountPending"), 3);
    EXPECT_EQ(Must(store_->CountPending("other", 100), "CountPending"), 2);
    EXPECT_EQ(Must(store_->CountPending("nobody", 100), "CountPending"), 0);
}

TEST_P(CountPending, StopsAtLimit) {
    for (int i = 0; i < 5; ++i) {
        Add(MakeTask(kT0 + i));
    }

    EXPECT_EQ(Must(store_->CountPending(kTenant, 3), "CountPending"), 3);
    EXPECT_EQ(Must(store_->CountPending(kTenant, 5), "CountPending"), 5);
    EXPECT_EQ(Must(store_->CountPending(kTenant, 6), "CountPending"), 5);
}

// Claim

class Claim : public StoreTest {};

TEST_P(Claim, LeasesOldestFirst) {
    const Task newest = Add(MakeTask(kT0 + 300));
    const Task oldest = Add(MakeTask(kT0 + 100));
    const Task middle = Add(MakeTask(kT0 + 200));
    const UnixMillis now = kT0 + 1000;

    std::vector<ClaimedTask> claimed = Must(store_->Claim("worker-1", 2, now, kLease), "Claim");

    ASSERT_EQ(claimed.size(), 2u);
    EXPECT_EQ(claimed[0].task.task_id, oldest.task_id);
    EXPECT_EQ(claimed[1].task.task_id, middle.task_id);
    EXPECT_EQ(Fetch(newest.task_id).status, TaskStatus::kPending);
}

TEST_P(Claim, SetsLeaseAndAttempt) {
    const Task task = Add(MakeTask(kT0));
    const UnixMillis now = kT0 + 1000;

    std::vector<ClaimedTask> claimed = ClaimAll("worker-1", now);

    ASSERT_EQ(claimed.size(), 1u);
    const ClaimedTask& got = claimed[0];
    EXPECT_EQ(got.lease.task_id, task.task_id);
    EXPECT_EQ(got.lease.owner, "worker-1");
    EXPECT_EQ(got.lease.attempt, 1);
    EXPECT_EQ(got.task.status, TaskStatus::kProcessing);
    EXPECT_EQ(got.task.attempts, 1);
    EXPECT_EQ(got.task.started_at, now);
    EXPECT_EQ(got.task.updated_at, now);
    EXPECT_FALSE(got.task.next_attempt_at.has_value());
    EXPECT_EQ(got.task.text, "the quick brown fox");
    const Task stored = Fetch(task.task_id);
    EXPECT_EQ(stored.status, TaskStatus::kProcessing);
    EXPECT_EQ(stored.attempts, 1);
    EXPECT_EQ(stored.updated_at, now);
    EXPECT_EQ(Must(store_->HeldLeases("worker-1"), "HeldLeases"),
              std::vector<std::string>{task.task_id});
}

TEST_P(Claim, TakesNoProcessingOrFinishedTask) {
    const UnixMillis now = kT0 + 1000;
    for (int i = 0; i < 4; ++i) {
        Add(MakeTask(kT0 + i));
    }
    std::vector<ClaimedTask> claimed = ClaimAll("worker-1", now);
    ASSERT_EQ(claimed.size(), 4u);
    ASSERT_EQ(Must(store_->Complete(claimed[0].lease, "{}", now), "Complete"),
              FenceOutcome::kApplied);
    ASSERT_EQ(
        Must(store_->Fail(claimed[1].lease, {"invalid_input", "bad"}, std::nullopt, now), "Fail"),
        FenceOutcome::kApplied);
    Must(store_->Cancel(kTenant, claimed[2].lease.task_id, now), "Cancel");
    // claimed[3] stays PROCESSING.

    std::vector<ClaimedTask> again = ClaimAll("worker-2", now + 1'000'000);

    EXPECT_TRUE(again.empty()) << again.size() << " tasks claimed twice";
}

TEST_P(Claim, WaitsForRetryTime) {
    Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    const UnixMillis retry_at = kT0 + 5000;
    ASSERT_EQ(Must(store_->Fail(lease, {"processing_error", "boom"}, retry_at, kT0 + 20), "Fail"),
              FenceOutcome::kApplied);

    std::vector<ClaimedTask> early = ClaimAll("worker-2", retry_at - 1);
    std::vector<ClaimedTask> due = ClaimAll("worker-2", retry_at);

    EXPECT_TRUE(early.empty());
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].lease.attempt, 2);
    EXPECT_FALSE(due[0].task.next_attempt_at.has_value());
}

TEST_P(Claim, ZeroTasksIsEmpty) {
    Add(MakeTask(kT0));

    std::vector<ClaimedTask> claimed = Must(store_->Claim("worker-1", 0, kT0, kLease), "Claim");

    EXPECT_TRUE(claimed.empty());
}

TEST_P(Claim, ConcurrentClaimsNeverShareTask) {
    constexpr int kTasks = 2000;
    constexpr int kWorkers = 8;
    constexpr int kBatch = 16;
    for (int i = 0; i < kTasks; ++i) {
        Add(MakeTask(kT0 + i));
    }
    std::vector<std::unique_ptr<TaskStore>> stores;
    for (int i = 0; i < kWorkers; ++i) {
        stores.push_back(OpenStore());
    }
    std::vector<std::vector<std::string>> claimed(kWorkers);
    std::vector<std::string> errors(kWorkers);
    std::latch start(kWorkers);
    std::vector<std::thread> threads;
    for (int w = 0; w < kWorkers; ++w) {
        threads.emplace_back([&, w] {
            const std::string owner = "worker-" + std::to_string(w);
            start.arrive_and_wait();
            // Bounded: even one worker alone needs only kTasks / kBatch rounds.
            for (int round = 0; round < kTasks; ++round) {
                auto batch = stores[w]->Claim(owner, kBatch, kT0 + kTasks, kLease);
                if (!batch.ok()) {
                    errors[w] = batch.status().message();
                    return;
                }
                if (batch->empty()) {
                    return;
                }
                for (const ClaimedTask& task : *batch) {
                    claimed[w].push_back(task.lease.task_id);
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }

    std::map<std::string, int> times_claimed;
    for (int w = 0; w < kWorkers; ++w) {
        EXPECT_EQ(errors[w], "") << "worker " << w;
        for (const std::string& id : claimed[w]) {
            ++times_claimed[id];
        }
    }
    EXPECT_EQ(times_claimed.size(), static_cast<std::size_t>(kTasks));
    for (const auto& [id, times] : times_claimed) {
        ASSERT_EQ(times, 1) << "task " << id << " was handed out " << times << " times";
    }
    for (int w = 0; w < kWorkers; ++w) {
        const std::string owner = "worker-" + std::to_string(w);
        EXPECT_EQ(Must(store_->HeldLeases(owner), "HeldLeases").size(), claimed[w].size()) << owner;
    }
}

// Complete, Fail and HandBack

class Fence : public StoreTest {};

TEST_P(Fence, CompleteStoresResult) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    const UnixMillis now = kT0 + 20;

    FenceOutcome outcome = Must(store_->Complete(lease, R"({"word_count":4})", now), "Complete");
    const Task stored = Fetch(task.task_id);

    EXPECT_EQ(outcome, FenceOutcome::kApplied);
    EXPECT_EQ(stored.status, TaskStatus::kCompleted);
    EXPECT_EQ(stored.result_json, R"({"word_count":4})");
    EXPECT_EQ(stored.finished_at, now);
    EXPECT_EQ(stored.updated_at, now);
    EXPECT_FALSE(stored.error.has_value());
    EXPECT_TRUE(Must(store_->HeldLeases("worker-1"), "HeldLeases").empty());
}

TEST_P(Fence, CompleteAfterRetryClearsError) {
    const Task task = Add(MakeTask(kT0));
    const Lease first = ClaimOne("worker-1", kT0 + 10);
    ASSERT_EQ(Must(store_->Fail(first, {"timeout", "slow"}, kT0 + 20, kT0 + 15), "Fail"),
              FenceOutcome::kApplied);
    const Lease second = ClaimOne("worker-1", kT0 + 30);

    ASSERT_EQ(Must(store_->Complete(second, "{}", kT0 + 40), "Complete"), FenceOutcome::kApplied);

    const Task stored = Fetch(task.task_id);
    EXPECT_EQ(stored.attempts, 2);
    EXPECT_FALSE(stored.error.has_value());
}

TEST_P(Fence, CompleteOnPendingTaskIsLost) {
    const Task task = Add(MakeTask(kT0));

    FenceOutcome outcome =
        Must(store_->Complete({task.task_id, "worker-1", 0}, "{}", kT0 + 5), "Complete");

    EXPECT_EQ(outcome, FenceOutcome::kLost);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kPending);
}

TEST_P(Fence, CompleteWithWrongOwnerIsLost) {
    const Task task = Add(MakeTask(kT0));
    Lease lease = ClaimOne("worker-1", kT0 + 10);
    lease.owner = "worker-2";

    FenceOutcome outcome = Must(store_->Complete(lease, "{}", kT0 + 20), "Complete");

    EXPECT_EQ(outcome, FenceOutcome::kLost);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kProcessing);
}

TEST_P(Fence, CompleteWithOldAttemptIsLost) {
    const Task task = Add(MakeTask(kT0));
    const Lease first = ClaimOne("worker-1", kT0 + 10);
    ASSERT_EQ(Must(store_->HandBack(first, kT0 + 20), "HandBack"), FenceOutcome::kApplied);
    ASSERT_EQ(
        Must(store_->Fail(ClaimOne("worker-1", kT0 + 30), {"timeout", "slow"}, kT0 + 40, kT0 + 35),
             "Fail"),
        FenceOutcome::kApplied);
    const Lease current = ClaimOne("worker-1", kT0 + 50);
    ASSERT_EQ(current.attempt, 2);
    Lease stale = current;
    stale.attempt = 1;

    FenceOutcome outcome = Must(store_->Complete(stale, "{}", kT0 + 60), "Complete");

    EXPECT_EQ(outcome, FenceOutcome::kLost);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kProcessing);
}

TEST_P(Fence, CompleteOnFinishedTaskIsLost) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    ASSERT_EQ(Must(store_->Complete(lease, R"({"first":true})", kT0 + 20), "Complete"),
              FenceOutcome::kApplied);

    FenceOutcome outcome =
        Must(store_->Complete(lease, R"({"second":true})", kT0 + 30), "Complete");

    EXPECT_EQ(outcome, FenceOutcome::kLost);
    EXPECT_EQ(Fetch(task.task_id).result_json, R"({"first":true})");
}

TEST_P(Fence, FailWithRetryReturnsToPending) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    const UnixMillis now = kT0 + 20;
    const UnixMillis retry_at = kT0 + 2000;

    FenceOutcome outcome =
        Must(store_->Fail(lease, {"processing_error", "boom"}, retry_at, now), "Fail");
    const Task stored = Fetch(task.task_id);

    EXPECT_EQ(outcome, FenceOutcome::kApplied);
    EXPECT_EQ(stored.status, TaskStatus::kPending);
    EXPECT_EQ(stored.attempts, 1);
    EXPECT_EQ(stored.next_attempt_at, retry_at);
    EXPECT_EQ(stored.updated_at, now);
    EXPECT_FALSE(stored.finished_at.has_value());
    ASSERT_TRUE(stored.error.has_value());
    EXPECT_EQ(stored.error->code, "processing_error");
    EXPECT_EQ(stored.error->message, "boom");
    EXPECT_TRUE(Must(store_->HeldLeases("worker-1"), "HeldLeases").empty());
}

TEST_P(Fence, FailWithoutRetryIsFailed) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    const UnixMillis now = kT0 + 20;

    FenceOutcome outcome =
        Must(store_->Fail(lease, {"invalid_input", "not text"}, std::nullopt, now), "Fail");
    const Task stored = Fetch(task.task_id);

    EXPECT_EQ(outcome, FenceOutcome::kApplied);
    EXPECT_EQ(stored.status, TaskStatus::kFailed);
    EXPECT_EQ(stored.finished_at, now);
    EXPECT_EQ(stored.updated_at, now);
    EXPECT_FALSE(stored.next_attempt_at.has_value());
    ASSERT_TRUE(stored.error.has_value());
    EXPECT_EQ(stored.error->code, "invalid_input");
    EXPECT_EQ(stored.error->message, "not text");
}

TEST_P(Fence, FailWithStaleLeaseIsLost) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    ASSERT_EQ(Must(store_->Complete(lease, "{}", kT0 + 20), "Complete"), FenceOutcome::kApplied);

    FenceOutcome outcome =
        Must(store_->Fail(lease, {"processing_error", "late"}, std::nullopt, kT0 + 30), "Fail");

    EXPECT_EQ(outcome, FenceOutcome::kLost);
    const Task stored = Fetch(task.task_id);
    EXPECT_EQ(stored.status, TaskStatus::kCompleted);
    EXPECT_FALSE(stored.error.has_value());
}

TEST_P(Fence, HandBackDoesNotCountAttempt) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    const UnixMillis now = kT0 + 20;

    FenceOutcome outcome = Must(store_->HandBack(lease, now), "HandBack");
    const Task stored = Fetch(task.task_id);

    EXPECT_EQ(outcome, FenceOutcome::kApplied);
    EXPECT_EQ(stored.status, TaskStatus::kPending);
    EXPECT_EQ(stored.attempts, 0);
    EXPECT_FALSE(stored.next_attempt_at.has_value());
    EXPECT_EQ(stored.updated_at, now);
    EXPECT_TRUE(Must(store_->HeldLeases("worker-1"), "HeldLeases").empty());
    std::vector<ClaimedTask> again = ClaimAll("worker-2", now);
    ASSERT_EQ(again.size(), 1u) << "a handed-back task is eligible at once";
    EXPECT_EQ(again[0].lease.attempt, 1);
}

TEST_P(Fence, HandBackWithStaleLeaseIsLost) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    Must(store_->Cancel(kTenant, task.task_id, kT0 + 15), "Cancel");

    FenceOutcome outcome = Must(store_->HandBack(lease, kT0 + 20), "HandBack");

    EXPECT_EQ(outcome, FenceOutcome::kLost);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kCancelled);
}

// Cancel

class Cancel : public StoreTest {};

TEST_P(Cancel, PendingTask) {
    const Task task = Add(MakeTask(kT0));
    const UnixMillis now = kT0 + 10;

    const Task cancelled = Must(store_->Cancel(kTenant, task.task_id, now), "Cancel");

    EXPECT_EQ(cancelled.status, TaskStatus::kCancelled);
    EXPECT_EQ(cancelled.finished_at, now);
    EXPECT_EQ(cancelled.updated_at, now);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kCancelled);
    EXPECT_TRUE(ClaimAll("worker-1", now + 1000).empty());
}

TEST_P(Cancel, WaitingRetryClearsNextAttempt) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    ASSERT_EQ(Must(store_->Fail(lease, {"timeout", "slow"}, kT0 + 5000, kT0 + 20), "Fail"),
              FenceOutcome::kApplied);

    const Task cancelled = Must(store_->Cancel(kTenant, task.task_id, kT0 + 30), "Cancel");

    EXPECT_EQ(cancelled.status, TaskStatus::kCancelled);
    EXPECT_FALSE(cancelled.next_attempt_at.has_value());
}

TEST_P(Cancel, ProcessingTaskFencesWorker) {
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);

    const Task cancelled = Must(store_->Cancel(kTenant, task.task_id, kT0 + 20), "Cancel");

    EXPECT_EQ(cancelled.status, TaskStatus::kCancelled);
    EXPECT_TRUE(Must(store_->HeldLeases("worker-1"), "HeldLeases").empty());
    EXPECT_EQ(Must(store_->Complete(lease, "{}", kT0 + 30), "Complete"), FenceOutcome::kLost);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kCancelled);
}

TEST_P(Cancel, CancelledTaskLeavesIt) {
    const Task task = Add(MakeTask(kT0));
    const Task first = Must(store_->Cancel(kTenant, task.task_id, kT0 + 10), "Cancel");

    const Task second = Must(store_->Cancel(kTenant, task.task_id, kT0 + 20), "Cancel");

    EXPECT_EQ(second.status, TaskStatus::kCancelled);
    EXPECT_EQ(second.updated_at, first.updated_at);
    EXPECT_EQ(second.finished_at, first.finished_at);
}

TEST_P(Cancel, CompletedTaskIsConflict) {
    const Task task = Add(MakeTask(kT0));
    ASSERT_EQ(Must(store_->Complete(ClaimOne("worker-1", kT0 + 10), "{}", kT0 + 20), "Complete"),
              FenceOutcome::kApplied);

    Result<Task> cancelled = store_->Cancel(kTenant, task.task_id, kT0 + 30);

    ASSERT_FALSE(cancelled.ok());
    EXPECT_EQ(cancelled.status().code(), StatusCode::kConflict);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kCompleted);
}

TEST_P(Cancel, FailedTaskIsConflict) {
    const Task task = Add(MakeTask(kT0));
    ASSERT_EQ(Must(store_->Fail(ClaimOne("worker-1", kT0 + 10), {"invalid_input", "x"},
                                std::nullopt, kT0 + 20),
                   "Fail"),
              FenceOutcome::kApplied);

    Result<Task> cancelled = store_->Cancel(kTenant, task.task_id, kT0 + 30);

    ASSERT_FALSE(cancelled.ok());
    EXPECT_EQ(cancelled.status().code(), StatusCode::kConflict);
}

TEST_P(Cancel, MissingOrForeignTaskIsNotFound) {
    const Task foreign = Add(MakeTask(kT0, "other"));

    Result<Task> missing = store_->Cancel(kTenant, NewUuidV7(kT0), kT0 + 10);
    Result<Task> other = store_->Cancel(kTenant, foreign.task_id, kT0 + 10);

    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.status().code(), StatusCode::kNotFound);
    EXPECT_EQ(Must(store_->Get("other", foreign.task_id, false), "Get").status,
              TaskStatus::kPending);
}

// Redrive

class Redrive : public StoreTest {};

TEST_P(Redrive, FailedTask) {
    const Task task = Add(MakeTask(kT0));
    ASSERT_EQ(Must(store_->Fail(ClaimOne("worker-1", kT0 + 10), {"invalid_input", "x"},
                                std::nullopt, kT0 + 20),
                   "Fail"),
              FenceOutcome::kApplied);
    const UnixMillis now = kT0 + 30;

    const Task redriven = Must(store_->Redrive(kTenant, task.task_id, now), "Redrive");

    EXPECT_EQ(redriven.status, TaskStatus::kPending);
    EXPECT_EQ(redriven.attempts, 0);
    EXPECT_FALSE(redriven.error.has_value());
    EXPECT_FALSE(redriven.finished_at.has_value());
    EXPECT_FALSE(redriven.next_attempt_at.has_value());
    EXPECT_FALSE(redriven.result_json.has_value());
    EXPECT_EQ(redriven.updated_at, now);
    std::vector<ClaimedTask> claimed = ClaimAll("worker-2", now);
    ASSERT_EQ(claimed.size(), 1u) << "a redriven task is eligible at once";
    EXPECT_EQ(claimed[0].lease.attempt, 1);
}

TEST_P(Redrive, CancelledTask) {
    const Task task = Add(MakeTask(kT0));
    Must(store_->Cancel(kTenant, task.task_id, kT0 + 10), "Cancel");

    const Task redriven = Must(store_->Redrive(kTenant, task.task_id, kT0 + 20), "Redrive");

    EXPECT_EQ(redriven.status, TaskStatus::kPending);
    EXPECT_FALSE(redriven.finished_at.has_value());
}

TEST_P(Redrive, UnfinishedOrCompletedIsConflict) {
    const Task processing = Add(MakeTask(kT0));
    const Task completed = Add(MakeTask(kT0 + 1));
    const Task pending = Add(MakeTask(kT0 + 2));
    std::vector<ClaimedTask> claimed =
        Must(store_->Claim("worker-1", 2, kT0 + 10, kLease), "Claim");
    ASSERT_EQ(claimed.size(), 2u);
    ASSERT_EQ(claimed[1].lease.task_id, completed.task_id);
    ASSERT_EQ(Must(store_->Complete(claimed[1].lease, "{}", kT0 + 20), "Complete"),
              FenceOutcome::kApplied);

    Result<Task> on_processing = store_->Redrive(kTenant, processing.task_id, kT0 + 30);
    Result<Task> on_completed = store_->Redrive(kTenant, completed.task_id, kT0 + 30);
    Result<Task> on_pending = store_->Redrive(kTenant, pending.task_id, kT0 + 30);

    ASSERT_FALSE(on_processing.ok());
    EXPECT_EQ(on_processing.status().code(), StatusCode::kConflict);
    ASSERT_FALSE(on_completed.ok());
    EXPECT_EQ(on_completed.status().code(), StatusCode::kConflict);
    ASSERT_FALSE(on_pending.ok());
    EXPECT_EQ(on_pending.status().code(), StatusCode::kConflict);
    EXPECT_EQ(Fetch(processing.task_id).status, TaskStatus::kProcessing);
    EXPECT_EQ(Fetch(completed.task_id).status, TaskStatus::kCompleted);
}

TEST_P(Redrive, MissingTaskIsNotFound) {
    Result<Task> redriven = store_->Redrive(kTenant, NewUuidV7(kT0), kT0);

    ASSERT_FALSE(redriven.ok());
    EXPECT_EQ(redriven.status().code(), StatusCode::kNotFound);
}

// Leases and the reaper

class Leases : public StoreTest {};

TEST_P(Leases, RenewLeasesExtendsOnlyOwnersLeases) {
    const Task mine = Add(MakeTask(kT0));
    const Task theirs = Add(MakeTask(kT0 + 1));
    ClaimOne("worker-1", kT0 + 10, 1000ms);
    ClaimOne("worker-2", kT0 + 10, 1000ms);

    std::vector<std::string> renewed =
        Must(store_->RenewLeases("worker-1", kT0 + 500, 1000ms), "RenewLeases");
    const ReapOutcome reaped = Must(store_->ReapExpired(kT0 + 1200, 100, NoBackoff), "ReapExpired");

    EXPECT_EQ(renewed, std::vector<std::string>{mine.task_id});
    EXPECT_EQ(reaped.requeued, 1);
    EXPECT_EQ(Fetch(mine.task_id).status, TaskStatus::kProcessing);
    EXPECT_EQ(Fetch(mine.task_id).updated_at, kT0 + 10) << "a renewal is not a visible change";
    EXPECT_EQ(Fetch(theirs.task_id).status, TaskStatus::kPending);
}

TEST_P(Leases, RenewLeasesSkipsLostTasks) {
    const Task task = Add(MakeTask(kT0));
    ClaimOne("worker-1", kT0 + 10);
    Must(store_->Cancel(kTenant, task.task_id, kT0 + 20), "Cancel");

    std::vector<std::string> renewed =
        Must(store_->RenewLeases("worker-1", kT0 + 30, kLease), "RenewLeases");

    EXPECT_TRUE(renewed.empty());
}

TEST_P(Leases, HeldLeasesListsOwnersProcessingTasks) {
    const Task first = Add(MakeTask(kT0));
    const Task second = Add(MakeTask(kT0 + 1));
    Add(MakeTask(kT0 + 2));
    ClaimOne("worker-1", kT0 + 10);
    ClaimOne("worker-1", kT0 + 10);
    ClaimOne("worker-2", kT0 + 10);

    std::vector<std::string> held = Must(store_->HeldLeases("worker-1"), "HeldLeases");

    std::sort(held.begin(), held.end());
    std::vector<std::string> expected{first.task_id, second.task_id};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(held, expected);
    EXPECT_TRUE(Must(store_->HeldLeases("worker-3"), "HeldLeases").empty());
}

TEST_P(Leases, ReapRequeuesExpiredLeaseWithBackoff) {
    const Task task = Add(MakeTask(kT0));
    ClaimOne("worker-1", kT0, 1000ms);
    std::vector<int> backoff_attempts;
    auto backoff = [&](int attempts) {
        backoff_attempts.push_back(attempts);
        return Millis{700};
    };

    const ReapOutcome at_expiry = Must(store_->ReapExpired(kT0 + 1000, 10, backoff), "Reap");
    const ReapOutcome after = Must(store_->ReapExpired(kT0 + 1001, 10, backoff), "Reap");
    const Task stored = Fetch(task.task_id);

    EXPECT_EQ(at_expiry.requeued + at_expiry.failed, 0) << "a lease expires after its end";
    EXPECT_EQ(after.requeued, 1);
    EXPECT_EQ(after.failed, 0);
    EXPECT_EQ(backoff_attempts, std::vector<int>{1});
    EXPECT_EQ(stored.status, TaskStatus::kPending);
    EXPECT_EQ(stored.attempts, 1);
    EXPECT_EQ(stored.next_attempt_at, kT0 + 1701);
    EXPECT_EQ(stored.updated_at, kT0 + 1001);
    ASSERT_TRUE(stored.error.has_value());
    EXPECT_EQ(stored.error->code, "worker_lost");
    EXPECT_EQ(stored.error->message, "the worker's lease expired");
    EXPECT_TRUE(ClaimAll("worker-2", kT0 + 1700).empty());
    EXPECT_EQ(ClaimAll("worker-2", kT0 + 1701).size(), 1u);
}

TEST_P(Leases, ReapFailsTaskWithoutAttemptsLeft) {
    const Task task = Add(MakeTask(kT0, kTenant, "text", "text.analyze", 1));
    ClaimOne("worker-1", kT0, 1000ms);

    const ReapOutcome reaped = Must(store_->ReapExpired(kT0 + 2000, 10, NoBackoff), "Reap");
    const Task stored = Fetch(task.task_id);

    EXPECT_EQ(reaped.failed, 1);
    EXPECT_EQ(reaped.requeued, 0);
    EXPECT_EQ(stored.status, TaskStatus::kFailed);
    EXPECT_EQ(stored.finished_at, kT0 + 2000);
    ASSERT_TRUE(stored.error.has_value());
    EXPECT_EQ(stored.error->code, "worker_lost");
}

TEST_P(Leases, ReapHonoursLimit) {
    for (int i = 0; i < 5; ++i) {
        Add(MakeTask(kT0 + i));
    }
    ASSERT_EQ(Must(store_->Claim("worker-1", 5, kT0 + 10, 1000ms), "Claim").size(), 5u);

    const ReapOutcome first = Must(store_->ReapExpired(kT0 + 5000, 3, NoBackoff), "Reap");
    const ReapOutcome second = Must(store_->ReapExpired(kT0 + 5000, 3, NoBackoff), "Reap");

    EXPECT_EQ(first.requeued, 3);
    EXPECT_EQ(second.requeued, 2);
}

TEST_P(Leases, ReapLeavesLiveLeases) {
    const Task task = Add(MakeTask(kT0));
    ClaimOne("worker-1", kT0, kLease);

    const ReapOutcome reaped = Must(store_->ReapExpired(kT0 + 1000, 10, NoBackoff), "Reap");

    EXPECT_EQ(reaped.requeued + reaped.failed, 0);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kProcessing);
}

TEST_P(Leases, StaleOwnerCannotCompleteReclaimedTask) {
    const Task task = Add(MakeTask(kT0));
    const Lease old_lease = ClaimOne("worker-1", kT0, 1000ms);
    ASSERT_EQ(Must(store_->ReapExpired(kT0 + 2000, 10, NoBackoff), "Reap").requeued, 1);
    const Lease new_lease = ClaimOne("worker-2", kT0 + 2000);

    FenceOutcome stale = Must(store_->Complete(old_lease, R"({"by":1})", kT0 + 2100), "Complete");
    FenceOutcome current = Must(store_->Complete(new_lease, R"({"by":2})", kT0 + 2200), "Complete");

    EXPECT_EQ(new_lease.attempt, 2);
    EXPECT_EQ(stale, FenceOutcome::kLost);
    EXPECT_EQ(current, FenceOutcome::kApplied);
    const Task stored = Fetch(task.task_id);
    EXPECT_EQ(stored.status, TaskStatus::kCompleted);
    EXPECT_EQ(stored.result_json, R"({"by":2})");
}

TEST_P(Leases, RenewedLeaseSurvivesStaleReaperView) {
    // A reaper that read the lease as expired must not win once the owner
    // has renewed it: its write re-checks the expiry.
    const Task task = Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0, 1000ms);
    ASSERT_EQ(Must(store_->RenewLeases("worker-1", kT0 + 1500, 10s), "RenewLeases").size(), 1u);

    const ReapOutcome reaped = Must(store_->ReapExpired(kT0 + 1500, 10, NoBackoff), "Reap");

    EXPECT_EQ(reaped.requeued, 0);
    EXPECT_EQ(Must(store_->Complete(lease, "{}", kT0 + 1600), "Complete"), FenceOutcome::kApplied);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kCompleted);
}

TEST_P(Leases, ConcurrentReapersRequeueEachTaskOnce) {
    constexpr int kTasks = 60;
    constexpr int kReapers = 4;
    for (int i = 0; i < kTasks; ++i) {
        Add(MakeTask(kT0 + i));
    }
    ASSERT_EQ(Must(store_->Claim("worker-1", kTasks, kT0 + 100, 1000ms), "Claim").size(),
              static_cast<std::size_t>(kTasks));
    std::vector<std::unique_ptr<TaskStore>> stores;
    for (int i = 0; i < kReapers; ++i) {
        stores.push_back(OpenStore());
    }
    std::vector<ReapOutcome> outcomes(kReapers);
    std::latch start(kReapers);
    std::vector<std::thread> threads;
    for (int i = 0; i < kReapers; ++i) {
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            outcomes[i] = Must(stores[i]->ReapExpired(kT0 + 5000, kTasks, NoBackoff), "Reap");
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }

    int requeued = 0;
    for (const ReapOutcome& outcome : outcomes) {
        requeued += outcome.requeued;
        EXPECT_EQ(outcome.failed, 0);
    }
    EXPECT_EQ(requeued, kTasks);
    std::vector<ClaimedTask> reclaimed = ClaimAll("worker-2", kT0 + 5000);
    ASSERT_EQ(reclaimed.size(), static_cast<std::size_t>(kTasks));
    for (const ClaimedTask& task : reclaimed) {
        ASSERT_EQ(task.lease.attempt, 2) << task.lease.task_id;
    }
}

// List

class List : public StoreTest {};

TEST_P(List, RejectsBadLimit) {
    for (const int limit : {0, -1, 1001}) {
        Result<TaskPage> page = store_->List(QueryFor(kTenant, limit));

        ASSERT_FALSE(page.ok()) << "limit " << limit;
        EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument) << "limit " << limit;
    }
}

TEST_P(List, ItemsOmitTextAndResult) {
    const Task task = Add(MakeTask(kT0));
    ASSERT_EQ(
        Must(store_->Complete(ClaimOne("worker-1", kT0 + 1), R"({"n":1})", kT0 + 2), "Complete"),
        FenceOutcome::kApplied);

    const TaskPage page = Must(store_->List(QueryFor(kTenant)), "List");

    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(page.items[0].task_id, task.task_id);
    EXPECT_EQ(page.items[0].status, TaskStatus::kCompleted);
    EXPECT_FALSE(page.items[0].text.has_value());
    EXPECT_FALSE(page.items[0].result_json.has_value());
    EXPECT_EQ(page.items[0].text_bytes, 19);
    EXPECT_FALSE(page.has_more);
}

TEST_P(List, OfEmptyStoreIsEmpty) {
    const TaskPage page = Must(store_->List(QueryFor(kTenant)), "List");

    EXPECT_TRUE(page.items.empty());
    EXPECT_FALSE(page.has_more);
}

// Builds tasks in every state, two types and shared timestamps, and checks
// that walking pages of each query returns exactly the matching tasks once,
// in order.
class ListPaging : public StoreTest {
  protected:
    void SetUp() override {
        StoreTest::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        constexpr int kTasks = 45;
        for (int i = 0; i < kTasks; ++i) {
            // Three tasks share each timestamp, so task_id breaks the ties.
            const UnixMillis created_at = kT0 + (i / 3) * 1000;
            Add(MakeTask(created_at, kTenant, "t", i % 2 == 0 ? "text.analyze" : "text.other"));
        }
        Add(MakeTask(kT0 + 500, "other"));
        Add(MakeTask(kT0 + 1500, "other", "t", "text.other"));

        const UnixMillis now = kT0 + 100'000;
        std::vector<ClaimedTask> claimed = ClaimAll("worker-1", now);
        for (std::size_t i = 0; i < claimed.size(); ++i) {
            const Lease& lease = claimed[i].lease;
            switch (i % 5) {
                case 0:
                    EXPECT_TRUE(store_->HandBack(lease, now).ok());
                    break;
                case 1:
                    break;  // stays PROCESSING
                case 2:
                    EXPECT_TRUE(store_->Complete(lease, "{}", now).ok());
                    break;
                case 3:
                    EXPECT_TRUE(
                        store_->Fail(lease, {"invalid_input", "x"}, std::nullopt, now).ok());
                    break;
                default:
                    EXPECT_TRUE(store_->Cancel(claimed[i].task.tenant, lease.task_id, now).ok());
            }
        }
        for (const ClaimedTask& task : claimed) {
            if (task.task.tenant == kTenant) {
                all_.push_back(Fetch(task.lease.task_id));
            }
        }
        ASSERT_EQ(all_.size(), static_cast<std::size_t>(kTasks));
    }

    // Returns the tasks that `query` matches, in its order.
    std::vector<std::string> Expected(const ListQuery& query) const {
        std::vector<Task> matching;
        for (const Task& task : all_) {
            const bool status_ok =
                query.statuses.empty() || std::find(query.statuses.begin(), query.statuses.end(),
                                                    task.status) != query.statuses.end();
            const bool type_ok = !query.type || task.type == *query.type;
            const bool after_ok = !query.created_after || task.created_at > *query.created_after;
            const bool before_ok = !query.created_before || task.created_at < *query.created_before;
            if (status_ok && type_ok && after_ok && before_ok) {
                matching.push_back(task);
            }
        }
        std::sort(matching.begin(), matching.end(), [&](const Task& a, const Task& b) {
            const auto key_a = std::make_pair(a.created_at, a.task_id);
            const auto key_b = std::make_pair(b.created_at, b.task_id);
            return query.descending ? key_a > key_b : key_a < key_b;
        });
        std::vector<std::string> ids;
        for (const Task& task : matching) {
            ids.push_back(task.task_id);
        }
        return ids;
    }

    // Walks every page of `query` and returns the ids in the order seen.
    std::vector<std::string> Walk(ListQuery query) {
        std::vector<std::string> seen;
        constexpr int kMaxPages = 100;
        for (int page_number = 0; page_number < kMaxPages; ++page_number) {
            Result<TaskPage> page = store_->List(query);
            if (!page.ok()) {
                ADD_FAILURE() << "List failed: " << page.status().message();
                return seen;
            }
            EXPECT_LE(page->items.size(), static_cast<std::size_t>(query.limit));
            for (const Task& task : page->items) {
                seen.push_back(task.task_id);
            }
            if (!page->has_more) {
                return seen;
            }
            EXPECT_FALSE(page->items.empty()) << "has_more on an empty page";
            if (page->items.empty()) {
                return seen;
            }
            query.after = ListPosition{page->items.back().created_at, page->items.back().task_id};
        }
        ADD_FAILURE() << "the walk did not end within " << kMaxPages << " pages";
        return seen;
    }

    std::vector<Task> all_;
};

TEST_P(ListPaging, WalksMatchingTasksOnceInOrder) {
    auto filter = [](std::vector<TaskStatus> statuses, std::optional<std::string> type = {},
                     std::optional<UnixMillis> after = {}, std::optional<UnixMillis> before = {}) {
        ListQuery query = QueryFor(kTenant);
        query.statuses = std::move(statuses);
        query.type = std::move(type);
        query.created_after = after;
        query.created_before = before;
        return query;
    };
    const std::vector<ListQuery> queries = {
        filter({}),
        filter({TaskStatus::kPending}),
        filter({TaskStatus::kFailed, TaskStatus::kCancelled}),
        filter({TaskStatus::kCompleted, TaskStatus::kCompleted}),
        filter({TaskStatus::kPending, TaskStatus::kProcessing, TaskStatus::kCompleted,
                TaskStatus::kFailed, TaskStatus::kCancelled}),
        filter({}, "text.other"),
        filter({TaskStatus::kProcessing, TaskStatus::kPending}, "text.analyze"),
        filter({}, std::nullopt, kT0 + 3000),
        filter({}, std::nullopt, std::nullopt, kT0 + 9000),
        filter({TaskStatus::kCancelled}, "text.analyze", kT0 + 1000, kT0 + 12000),
        filter({}, "text.none"),
    };
    for (ListQuery query : queries) {
        for (const bool descending : {true, false}) {
            for (const int limit : {1, 4, 100}) {
                query.descending = descending;
                query.limit = limit;
                const std::vector<std::string> expected = Expected(query);

                const std::vector<std::string> seen = Walk(query);

                EXPECT_EQ(seen, expected) << "statuses " << query.statuses.size() << ", type "
                                          << query.type.value_or("any") << ", descending "
                                          << descending << ", limit " << limit;
            }
        }
    }
}

TEST_P(ListPaging, BoundTighterThanPositionWins) {
    for (const bool descending : {true, false}) {
        ListQuery query = QueryFor(kTenant, 4);
        query.descending = descending;
        if (descending) {
            query.created_before = kT0 + 5000;
        } else {
            query.created_after = kT0 + 9000;
        }
        const std::vector<std::string> expected = Expected(query);
        // A position on the far side of the bound filters out nothing more.
        query.after = ListPosition{descending ? kT0 + 9000 : kT0 + 5000, ""};

        const std::vector<std::string> seen = Walk(query);

        EXPECT_FALSE(expected.empty());
        EXPECT_EQ(seen, expected) << "descending " << descending;
    }
}

TEST_P(ListPaging, HasMoreOnlyBeforeLastPage) {
    const std::size_t total = all_.size();
    const ListQuery query = QueryFor(kTenant, static_cast<int>(total));
    const ListQuery short_query = QueryFor(kTenant, static_cast<int>(total) - 1);

    const TaskPage exact = Must(store_->List(query), "List");
    const TaskPage short_page = Must(store_->List(short_query), "List");

    EXPECT_EQ(exact.items.size(), total);
    EXPECT_FALSE(exact.has_more);
    EXPECT_EQ(short_page.items.size(), total - 1);
    EXPECT_TRUE(short_page.has_more);
}

TEST_P(ListPaging, OtherTenantSeesOnlyItsTasks) {
    const TaskPage page = Must(store_->List(QueryFor("other")), "List");

    ASSERT_EQ(page.items.size(), 2u);
    EXPECT_EQ(page.items[0].created_at, kT0 + 1500);
    EXPECT_EQ(page.items[1].created_at, kT0 + 500);
}

// Pruning finished tasks

class Prune : public StoreTest {};

TEST_P(Prune, DeletesOnlyOldFinishedTasks) {
    const Task old_done = Add(MakeTask(kT0));
    const Task pending = Add(MakeTask(kT0 + 1));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    ASSERT_EQ(lease.task_id, old_done.task_id);
    Must(store_->Complete(lease, R"({"word_count":0})", kT0 + 20), "Complete");
    const Task recent_cancelled = Add(MakeTask(kT0 + 2));
    Must(store_->Cancel(kTenant, recent_cancelled.task_id, kT0 + 5000), "Cancel");

    const int deleted = Must(store_->PruneFinished(kT0 + 1000, 100), "PruneFinished");

    EXPECT_EQ(deleted, 1);
    EXPECT_EQ(store_->Get(kTenant, old_done.task_id, true).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(Fetch(pending.task_id).status, TaskStatus::kPending);
    EXPECT_EQ(Fetch(recent_cancelled.task_id).status, TaskStatus::kCancelled)
        << "finished after the cutoff, so it stays";
}

TEST_P(Prune, DeletesIdempotencyKeysWithTask) {
    const Task task =
        Must(store_->Create(MakeTask(kT0), IdempotencyKey{"key-1", "hash-1"}), "Create").task;
    Must(store_->Cancel(kTenant, task.task_id, kT0 + 10), "Cancel");

    ASSERT_EQ(Must(store_->PruneFinished(kT0 + 1000, 100), "PruneFinished"), 1);

    const CreateOutcome again =
        Must(store_->Create(MakeTask(kT0 + 2000), IdempotencyKey{"key-1", "hash-2"}), "Create");
    EXPECT_EQ(again.disposition, CreateDisposition::kCreated)
        << "the pruned task's key is gone with it";
}

TEST_P(Prune, HonoursBatchLimit) {
    for (int i = 0; i < 5; ++i) {
        const Task task = Add(MakeTask(kT0 + i));
        Must(store_->Cancel(kTenant, task.task_id, kT0 + 10 + i), "Cancel");
    }

    EXPECT_EQ(Must(store_->PruneFinished(kT0 + 1000, 2), "PruneFinished"), 2);
    EXPECT_EQ(Must(store_->PruneFinished(kT0 + 1000, 2), "PruneFinished"), 2);
    EXPECT_EQ(Must(store_->PruneFinished(kT0 + 1000, 2), "PruneFinished"), 1);
    EXPECT_EQ(Must(store_->PruneFinished(kT0 + 1000, 2), "PruneFinished"), 0);
}

TEST_P(Prune, ZeroLimitDeletesNothing) {
    const Task task = Add(MakeTask(kT0));
    Must(store_->Cancel(kTenant, task.task_id, kT0 + 10), "Cancel");

    EXPECT_EQ(Must(store_->PruneFinished(kT0 + 1000, 0), "PruneFinished"), 0);
    EXPECT_EQ(Fetch(task.task_id).status, TaskStatus::kCancelled);
}

// Batches: several writes in one transaction

class Batches : public StoreTest {};

TEST_P(Batches, CreateBatchStoresEveryTask) {
    std::vector<NewTask> tasks;
    for (int i = 0; i < 5; ++i) {
        tasks.push_back(MakeTask(kT0 + i, kTenant, "text " + std::to_string(i)));
    }
    const std::optional<IdempotencyKey> no_key;
    std::vector<CreateRequest> requests;
    for (const NewTask& task : tasks) {
        requests.push_back(CreateRequest{&task, &no_key});
    }

    std::vector<Result<CreateOutcome>> outcomes = store_->CreateBatch(requests);

    ASSERT_EQ(outcomes.size(), tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        ASSERT_TRUE(outcomes[i].ok()) << outcomes[i].status().message();
        EXPECT_EQ(outcomes[i]->disposition, CreateDisposition::kCreated);
        EXPECT_EQ(outcomes[i]->task.task_id, tasks[i].task_id);
        const Task stored = Must(store_->Get(kTenant, tasks[i].task_id, true), "Get");
        EXPECT_EQ(stored.text, tasks[i].text);
        EXPECT_EQ(stored.status, TaskStatus::kPending);
    }
}

TEST_P(Batches, CreateBatchReplaysSameKeyWithinBatch) {
    const NewTask first = MakeTask(kT0);
    const NewTask second = MakeTask(kT0 + 1);
    const std::optional<IdempotencyKey> key = IdempotencyKey{"order-7", "hash-a"};
    const std::optional<IdempotencyKey> other_body = IdempotencyKey{"order-7", "hash-b"};
    const std::vector<CreateRequest> requests = {
        {&first, &key}, {&second, &key}, {&second, &other_body}};

    std::vector<Result<CreateOutcome>> outcomes = store_->CreateBatch(requests);

    ASSERT_EQ(outcomes.size(), 3u);
    ASSERT_TRUE(outcomes[0].ok()) << outcomes[0].status().message();
    ASSERT_TRUE(outcomes[1].ok()) << outcomes[1].status().message();
    ASSERT_TRUE(outcomes[2].ok()) << outcomes[2].status().message();
    EXPECT_EQ(outcomes[0]->disposition, CreateDisposition::kCreated);
    EXPECT_EQ(outcomes[1]->disposition, CreateDisposition::kReplayed);
    EXPECT_EQ(outcomes[1]->task.task_id, first.task_id);
    EXPECT_EQ(outcomes[2]->disposition, CreateDisposition::kKeyReused);
    EXPECT_EQ(store_->Get(kTenant, second.task_id, false).status().code(), StatusCode::kNotFound);
}

TEST_P(Batches, CreateBatchFailsOnlyTheDuplicateId) {
    const Task existing = Add(MakeTask(kT0));
    NewTask duplicate = MakeTask(kT0 + 1);
    duplicate.task_id = existing.task_id;
    const NewTask fresh = MakeTask(kT0 + 2);
    const std::optional<IdempotencyKey> no_key;
    const std::vector<CreateRequest> requests = {{&duplicate, &no_key}, {&fresh, &no_key}};

    std::vector<Result<CreateOutcome>> outcomes = store_->CreateBatch(requests);

    ASSERT_EQ(outcomes.size(), 2u);
    EXPECT_EQ(outcomes[0].status().code(), StatusCode::kConflict);
    ASSERT_TRUE(outcomes[1].ok()) << outcomes[1].status().message();
    EXPECT_EQ(Fetch(fresh.task_id).status, TaskStatus::kPending);
    EXPECT_EQ(Fetch(existing.task_id).created_at, existing.created_at);
}

TEST_P(Batches, CompleteBatchAppliesOnlyCurrentLeases) {
    Add(MakeTask(kT0));
    Add(MakeTask(kT0 + 1));
    const std::vector<ClaimedTask> claimed = ClaimAll("worker-1", kT0 + 10);
    ASSERT_EQ(claimed.size(), 2u);
    Lease stale = claimed[1].lease;
    stale.owner = "worker-2";
    const std::vector<CompleteRequest> requests = {{&claimed[0].lease, R"({"word_count":1})"},
                                                   {&stale, R"({"word_count":2})"}};

    std::vector<Result<FenceOutcome>> outcomes = store_->CompleteBatch(requests, kT0 + 20);

    ASSERT_EQ(outcomes.size(), 2u);
    ASSERT_TRUE(outcomes[0].ok()) << outcomes[0].status().message();
    ASSERT_TRUE(outcomes[1].ok()) << outcomes[1].status().message();
    EXPECT_EQ(*outcomes[0], FenceOutcome::kApplied);
    EXPECT_EQ(*outcomes[1], FenceOutcome::kLost);
    const Task done = Fetch(claimed[0].lease.task_id);
    EXPECT_EQ(done.status, TaskStatus::kCompleted);
    EXPECT_EQ(done.result_json, R"({"word_count":1})");
    EXPECT_EQ(done.finished_at, kT0 + 20);
    EXPECT_EQ(Fetch(claimed[1].lease.task_id).status, TaskStatus::kProcessing);
}

TEST_P(Batches, CompleteBatchRacesRenewalWithoutDeadlock) {
    constexpr int kTasks = 1200;
    constexpr std::size_t kBatch = 200;
    for (int i = 0; i < kTasks; ++i) {
        Add(MakeTask(kT0 + i));
    }
    const std::vector<ClaimedTask> claimed = ClaimAll("worker-1", kT0 + kTasks, kTasks);
    ASSERT_EQ(claimed.size(), static_cast<std::size_t>(kTasks));
    // Newest first, the opposite of the order a renewal meets the rows in.
    std::vector<Lease> leases;
    for (auto item = claimed.rbegin(); item != claimed.rend(); ++item) {
        leases.push_back(item->lease);
    }
    std::unique_ptr<TaskStore> renewer = OpenStore();
    ASSERT_NE(renewer, nullptr);

    std::atomic<bool> done{false};
    std::vector<Status> renewal_errors;
    std::thread renewals([&] {
        for (int round = 0; round < 200 && !done.load(); ++round) {
            auto renewed = renewer->RenewLeases("worker-1", kT0 + kTasks + round, kLease);
            if (!renewed.ok()) {
                renewal_errors.push_back(renewed.status());
            }
        }
    });
    std::vector<Status> complete_errors;
    for (std::size_t start = 0; start < leases.size(); start += kBatch) {
        std::vector<CompleteRequest> requests;
        for (std::size_t i = start; i < std::min(start + kBatch, leases.size()); ++i) {
            requests.push_back(CompleteRequest{&leases[i], R"({"word_count":1})"});
        }
        for (const auto& outcome : store_->CompleteBatch(requests, kT0 + 2 * kTasks)) {
            if (!outcome.ok()) {
                complete_errors.push_back(outcome.status());
            }
        }
    }
    done = true;
    renewals.join();

    EXPECT_TRUE(renewal_errors.empty()) << renewal_errors.front().message();
    EXPECT_TRUE(complete_errors.empty()) << complete_errors.front().message();
    EXPECT_TRUE(Must(store_->HeldLeases("worker-1"), "HeldLeases").empty());
}

// Task counts by state and the claim queue head

// Counts by state in TaskStatus order: PENDING, PROCESSING, COMPLETED,
// FAILED, CANCELLED.
using StateCounts = std::array<std::int64_t, 5>;

class Stats : public StoreTest {
  protected:
    StateCounts Counts() { return Must(store_->Stats(), "Stats").by_status; }
};

TEST_P(Stats, EmptyStoreCountsNothing) {
    const TaskStats stats = Must(store_->Stats(), "Stats");

    EXPECT_EQ(stats.by_status, (StateCounts{0, 0, 0, 0, 0}));
    EXPECT_FALSE(stats.earliest_pending_eligible_at.has_value());
}

TEST_P(Stats, CreateCountsPending) {
    Add(MakeTask(kT0));
    Add(MakeTask(kT0 + 1));

    EXPECT_EQ(Counts(), (StateCounts{2, 0, 0, 0, 0}));
}

TEST_P(Stats, CreateBatchAndReplayCountOnce) {
    const NewTask first = MakeTask(kT0);
    const NewTask second = MakeTask(kT0 + 1);
    const std::optional<IdempotencyKey> key = IdempotencyKey{"key-1", "hash-1"};
    const std::optional<IdempotencyKey> no_key;
    const CreateRequest requests[] = {{&first, &key}, {&second, &no_key}};
    for (const auto& result : store_->CreateBatch(requests)) {
        ASSERT_TRUE(result.ok()) << result.status().message();
    }
    const NewTask replay = MakeTask(kT0 + 2);
    Must(store_->Create(replay, key), "Create replay");

    EXPECT_EQ(Counts(), (StateCounts{2, 0, 0, 0, 0})) << "a replay stores no task";
}

TEST_P(Stats, ClaimMovesToProcessing) {
    Add(MakeTask(kT0));
    Add(MakeTask(kT0 + 1));
    Add(MakeTask(kT0 + 2));

    ASSERT_EQ(ClaimAll("worker-1", kT0 + 10, 2).size(), 2u);

    EXPECT_EQ(Counts(), (StateCounts{1, 2, 0, 0, 0}));
}

TEST_P(Stats, CompleteMovesToCompleted) {
    Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);

    Must(store_->Complete(lease, R"({"word_count":1})", kT0 + 20), "Complete");

    EXPECT_EQ(Counts(), (StateCounts{0, 0, 1, 0, 0}));
}

TEST_P(Stats, LostCompleteChangesNothing) {
    Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    const Lease stale{lease.task_id, "worker-2", lease.attempt};

    ASSERT_EQ(Must(store_->Complete(stale, "{}", kT0 + 20), "Complete"), FenceOutcome::kLost);

    EXPECT_EQ(Counts(), (StateCounts{0, 1, 0, 0, 0}));
}

TEST_P(Stats, CompleteBatchCountsEachTask) {
    Add(MakeTask(kT0));
    Add(MakeTask(kT0 + 1));
    const std::vector<ClaimedTask> claimed = ClaimAll("worker-1", kT0 + 10);
    ASSERT_EQ(claimed.size(), 2u);
    const CompleteRequest requests[] = {{&claimed[0].lease, "{}"}, {&claimed[1].lease, "{}"}};

    for (const auto& result : store_->CompleteBatch(requests, kT0 + 20)) {
        ASSERT_TRUE(result.ok()) << result.status().message();
    }

    EXPECT_EQ(Counts(), (StateCounts{0, 0, 2, 0, 0}));
}

TEST_P(Stats, FailWithRetryReturnsToPending) {
    Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);

    Must(store_->Fail(lease, TaskError{"injected_failure", "boom"}, kT0 + 500, kT0 + 20), "Fail");

    EXPECT_EQ(Counts(), (StateCounts{1, 0, 0, 0, 0}));
}

TEST_P(Stats, FinalFailureCountsFailed) {
    Add(MakeTask(kT0, kTenant, "text", "text.analyze", 1));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);

    Must(store_->Fail(lease, TaskError{"invalid_input", "bad"}, std::nullopt, kT0 + 20), "Fail");

    EXPECT_EQ(Counts(), (StateCounts{0, 0, 0, 1, 0}));
}

TEST_P(Stats, HandBackReturnsToPending) {
    Add(MakeTask(kT0));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);

    Must(store_->HandBack(lease, kT0 + 20), "HandBack");

    EXPECT_EQ(Counts(), (StateCounts{1, 0, 0, 0, 0}));
}

TEST_P(Stats, CancelCountsPendingAndProcessing) {
    const Task claimed = Add(MakeTask(kT0));
    const Task waiting = Add(MakeTask(kT0 + 1));
    Add(MakeTask(kT0 + 2));
    ASSERT_EQ(ClaimOne("worker-1", kT0 + 10).task_id, claimed.task_id);

    Must(store_->Cancel(kTenant, claimed.task_id, kT0 + 20), "Cancel");
    Must(store_->Cancel(kTenant, waiting.task_id, kT0 + 20), "Cancel");
    Must(store_->Cancel(kTenant, waiting.task_id, kT0 + 30), "Cancel again");

    EXPECT_EQ(Counts(), (StateCounts{1, 0, 0, 0, 2})) << "a repeated cancel changes nothing";
}

TEST_P(Stats, RedriveReturnsToPending) {
    const Task failed = Add(MakeTask(kT0, kTenant, "text", "text.analyze", 1));
    const Task cancelled = Add(MakeTask(kT0 + 1));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    ASSERT_EQ(lease.task_id, failed.task_id);
    Must(store_->Fail(lease, TaskError{"invalid_input", "bad"}, std::nullopt, kT0 + 20), "Fail");
    Must(store_->Cancel(kTenant, cancelled.task_id, kT0 + 20), "Cancel");
    ASSERT_EQ(Counts(), (StateCounts{0, 0, 0, 1, 1}));

    Must(store_->Redrive(kTenant, failed.task_id, kT0 + 30), "Redrive");
    Must(store_->Redrive(kTenant, cancelled.task_id, kT0 + 30), "Redrive");

    EXPECT_EQ(Counts(), (StateCounts{2, 0, 0, 0, 0}));
}

TEST_P(Stats, ReapingRequeuesAndFails) {
    Add(MakeTask(kT0, kTenant, "text", "text.analyze", 1));
    Add(MakeTask(kT0 + 1, kTenant, "text", "text.analyze", 3));
    ASSERT_EQ(ClaimAll("worker-1", kT0 + 10).size(), 2u);

    const ReapOutcome reaped = Must(store_->ReapExpired(kT0 + 60'000, 10, NoBackoff), "Reap");

    ASSERT_EQ(reaped.failed, 1);
    ASSERT_EQ(reaped.requeued, 1);
    EXPECT_EQ(Counts(), (StateCounts{1, 0, 0, 1, 0}));
}

TEST_P(Stats, PruningUncountsDeletedTasks) {
    Add(MakeTask(kT0));
    const Task cancelled = Add(MakeTask(kT0 + 1));
    Add(MakeTask(kT0 + 2));
    const Lease lease = ClaimOne("worker-1", kT0 + 10);
    Must(store_->Complete(lease, "{}", kT0 + 20), "Complete");
    Must(store_->Cancel(kTenant, cancelled.task_id, kT0 + 20), "Cancel");
    ASSERT_EQ(Counts(), (StateCounts{1, 0, 1, 0, 1}));

    ASSERT_EQ(Must(store_->PruneFinished(kT0 + 1000, 100), "PruneFinished"), 2);

    EXPECT_EQ(Counts(), (StateCounts{1, 0, 0, 0, 0}));
}

TEST_P(Stats, CountsSurviveReopen) {
    Add(MakeTask(kT0));
    Add(MakeTask(kT0 + 1));
    ClaimOne("worker-1", kT0 + 10);

    std::unique_ptr<TaskStore> other = OpenStore();
    ASSERT_NE(other, nullptr);

    EXPECT_EQ(Must(other->Stats(), "Stats").by_status, (StateCounts{1, 1, 0, 0, 0}));
}

TEST_P(Stats, ConcurrentClaimsKeepCountsExact) {
    constexpr int kTasks = 200;
    for (int i = 0; i < kTasks; ++i) {
        Add(MakeTask(kT0 + i));
    }
    std::vector<std::thread> workers;
    std::atomic<int> errors{0};
    for (int w = 0; w < 4; ++w) {
        workers.emplace_back([this, w, &errors] {
            std::unique_ptr<TaskStore> store = OpenStore();
            if (store == nullptr) {
                ++errors;
                return;
            }
            const std::string owner = "worker-" + std::to_string(w);
            for (int round = 0; round < 100; ++round) {
                auto claimed = store->Claim(owner, 5, kT0 + kTasks, kLease);
                if (!claimed.ok()) {
                    ++errors;
                    return;
                }
                if (claimed->empty()) {
                    return;
                }
                for (const ClaimedTask& item : *claimed) {
                    if (!store->Complete(item.lease, "{}", kT0 + kTasks + 1).ok()) {
                        ++errors;
                    }
                }
            }
        });
    }
    for (std::thread& worker : workers) {
        worker.join();
    }

    ASSERT_EQ(errors.load(), 0);
    EXPECT_EQ(Counts(), (StateCounts{0, 0, kTasks, 0, 0}));
}

TEST_P(Stats, EarliestPendingIsClaimQueueHead) {
    Add(MakeTask(kT0 + 5));
    Add(MakeTask(kT0 + 2));
    Add(MakeTask(kT0 + 9));

    EXPECT_EQ(Must(store_->Stats(), "Stats").earliest_pending_eligible_at, kT0 + 2);

    ClaimOne("worker-1", kT0 + 10);

    EXPECT_EQ(Must(store_->Stats(), "Stats").earliest_pending_eligible_at, kT0 + 5);
}

// The traceparent sent with a submission

TEST_P(CreateAndGet, ClaimReturnsTraceParent) {
    NewTask traced = MakeTask(kT0);
    traced.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    Add(traced);
    Add(MakeTask(kT0 + 1));

    const std::vector<ClaimedTask> claimed = ClaimAll("worker-1", kT0 + 10);

    ASSERT_EQ(claimed.size(), 2u);
    EXPECT_EQ(claimed[0].task.traceparent, traced.traceparent);
    EXPECT_FALSE(claimed[1].task.traceparent.has_value());
}

TEST_P(CreateAndGet, BatchedCreateKeepsTraceParent) {
    NewTask traced = MakeTask(kT0);
    traced.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    NewTask keyed = MakeTask(kT0 + 1);
    keyed.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    const std::optional<IdempotencyKey> key = IdempotencyKey{"key-1", "hash-1"};
    const std::optional<IdempotencyKey> no_key;
    const CreateRequest requests[] = {{&traced, &no_key}, {&keyed, &key}};
    for (const auto& result : store_->CreateBatch(requests)) {
        ASSERT_TRUE(result.ok()) << result.status().message();
    }

    const std::vector<ClaimedTask> claimed = ClaimAll("worker-1", kT0 + 10);

    ASSERT_EQ(claimed.size(), 2u);
    EXPECT_EQ(claimed[0].task.traceparent, traced.traceparent);
    EXPECT_EQ(claimed[1].task.traceparent, keyed.traceparent);
}

const Backend kBackends[] = {
    {"Sqlite", []() -> std::unique_ptr<StoreFactory> { return std::make_unique<SqliteFactory>(); }},
    {"Postgres",
     []() -> std::unique_ptr<StoreFactory> { return std::make_unique<PostgresFactory>(); }},
};

INSTANTIATE_TEST_SUITE_P(Conformance, Setup, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, CreateAndGet, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, Idempotency, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, GetStatuses, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, CountPending, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, Claim, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, Fence, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, Cancel, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, Redrive, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, Leases, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, List, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, Prune, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, ListPaging, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, Batches, testing::ValuesIn(kBackends), BackendName);
INSTANTIATE_TEST_SUITE_P(Conformance, Stats, testing::ValuesIn(kBackends), BackendName);

}  // namespace
}  // namespace conveyor
