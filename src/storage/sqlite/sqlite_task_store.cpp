#include "storage/sqlite/sqlite_task_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <set>
#include <utility>

#include "storage/list_bounds.hpp"
#include "storage/sqlite/sqlite_connection.hpp"
#include "storage/sqlite/sqlite_schema.hpp"
#include "storage/sqlite/sqlite_statements.hpp"

namespace conveyor {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::StatementHandle;
using sqlite::Transaction;

namespace {

constexpr int kMaxListLimit = 1000;
constexpr char kWorkerLostMessage[] = "the worker's lease expired";

// Positions within kTaskColumns.
enum TaskColumn {
    kTaskId,
    kTenant,
    kType,
    kStatus,
    kParamsJson,
    kMetadataJson,
    kTextBytes,
    kAttempts,
    kMaxAttempts,
    kCreatedAt,
    kUpdatedAt,
    kStartedAt,
    kFinishedAt,
    kNextAttemptAt,
    kErrorCode,
    kErrorMessage,
    kResultJson,
};
static_assert(kResultJson == sqlite::kTaskSummaryColumnCount);

Result<TaskStatus> ReadStatus(const Statement& row, int column) {
    const std::string text = row.ColumnText(column);
    const std::optional<TaskStatus> status = ParseTaskStatus(text);
    if (!status) {
        return Status::Internal("unknown task status '" + text + "' in the tasks table");
    }
    return *status;
}

// Reads kTaskColumns, or the summary columns when `with_result` is false,
// starting at column `first`.
Result<Task> ReadTask(const Statement& row, int first, bool with_result) {
    Result<TaskStatus> status = ReadStatus(row, first + kStatus);
    if (!status.ok()) {
        return status.status();
    }
    Task task;
    task.task_id = row.ColumnText(first + kTaskId);
    task.tenant = row.ColumnText(first + kTenant);
    task.type = row.ColumnText(first + kType);
    task.status = *status;
    task.params_json = row.ColumnText(first + kParamsJson);
    task.metadata_json = row.ColumnOptionalText(first + kMetadataJson);
    task.text_bytes = row.ColumnInt64(first + kTextBytes);
    task.attempts = static_cast<int>(row.ColumnInt64(first + kAttempts));
    task.max_attempts = static_cast<int>(row.ColumnInt64(first + kMaxAttempts));
    task.created_at = row.ColumnInt64(first + kCreatedAt);
    task.updated_at = row.ColumnInt64(first + kUpdatedAt);
    task.started_at = row.ColumnOptionalInt64(first + kStartedAt);
    task.finished_at = row.ColumnOptionalInt64(first + kFinishedAt);
    task.next_attempt_at = row.ColumnOptionalInt64(first + kNextAttemptAt);
    if (!row.ColumnIsNull(first + kErrorCode)) {
        task.error = TaskError{row.ColumnText(first + kErrorCode),
                               row.ColumnOptionalText(first + kErrorMessage).value_or("")};
    }
    if (with_result) {
        task.result_json = row.ColumnOptionalText(first + kResultJson);
    }
    return task;
}

// Runs a prepared SELECT of kTaskColumns and returns its one row, or
// nullopt when there is none.
Result<std::optional<Task>> ReadOneTask(Statement& select) {
    Result<bool> row = select.Step();
    if (!row.ok()) {
        return row.status();
    }
    if (!*row) {
        return std::optional<Task>();
    }
    Result<Task> task = ReadTask(select, 0, true);
    if (!task.ok()) {
        return task.status();
    }
    return std::optional<Task>(std::move(*task));
}

Result<std::optional<Task>> SelectTask(Connection& connection, std::string_view tenant,
                                       std::string_view task_id) {
    Result<StatementHandle> select = connection.Prepare(sqlite::kSelectTaskSql);
    if (!select.ok()) {
        return select.status();
    }
    (*select)->BindText(1, task_id);
    (*select)->BindText(2, tenant);
    return ReadOneTask(**select);
}

// Steps through every row of `statement` and calls `on_row`, which returns
// a Status, for each. Stops at the first error.
template <typename OnRow>
Status ForEachRow(Statement& statement, OnRow on_row) {
    while (true) {
        Result<bool> row = statement.Step();
        if (!row.ok()) {
            return row.status();
        }
        if (!*row) {
            return Status::Ok();
        }
        if (Status status = on_row(statement); !status.ok()) {
            return status;
        }
    }
}

Status AppendTaskSummaries(Statement& select, std::vector<Task>& tasks) {
    return ForEachRow(select, [&](Statement& row) {
        Result<Task> task = ReadTask(row, 0, false);
        if (!task.ok()) {
            return task.status();
        }
        tasks.push_back(std::move(*task));
        return Status::Ok();
    });
}

Result<std::vector<std::string>> ReadIds(Statement& select) {
    std::vector<std::string> ids;
    Status status = ForEachRow(select, [&](Statement& row) {
        ids.push_back(row.ColumnText(0));
        return Status::Ok();
    });
    if (!status.ok()) {
        return status;
    }
    return ids;
}

Status TaskNotFound(std::string_view tenant, std::string_view task_id) {
    return Status::NotFound("task " + std::string(task_id) + " not found for tenant '" +
                            std::string(tenant) + "'");
}

Result<std::string> DecodeHex(std::string_view hex) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    };
    if (hex.size() % 2 != 0) {
        return Status::Internal("the stored cursor key has an odd number of hex digits");
    }
    std::string bytes;
    bytes.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int high = nibble(hex[i]);
        const int low = nibble(hex[i + 1]);
        if (high < 0 || low < 0) {
            return Status::Internal("the stored cursor key is not hex");
        }
        bytes.push_back(static_cast<char>((high << 4) | low));
    }
    return bytes;
}

// Orders list rows the way the page walks: by (created_at, task_id).
bool ComesBefore(const Task& a, const Task& b, bool descending) {
    if (a.created_at != b.created_at) {
        return descending ? a.created_at > b.created_at : a.created_at < b.created_at;
    }
    return descending ? a.task_id > b.task_id : a.task_id < b.task_id;
}

}  // namespace

// A reader connection on loan from the pool. The destructor returns it.
class SqliteTaskStore::ReaderLease {
  public:
    ReaderLease(SqliteTaskStore& store, std::unique_ptr<Connection> connection)
        : store_(store), connection_(std::move(connection)) {}
    ~ReaderLease() { store_.ReturnReader(std::move(connection_)); }
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;

    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_.get(); }

  private:
    SqliteTaskStore& store_;
    std::unique_ptr<Connection> connection_;
};

SqliteTaskStore::SqliteTaskStore(std::unique_ptr<Connection> writer,
                                 std::vector<std::unique_ptr<Connection>> readers)
    : writer_(std::move(writer)), idle_readers_(std::move(readers)) {}

SqliteTaskStore::~SqliteTaskStore() = default;

Result<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::Open(SqliteOptions options) {
    if (options.path.empty()) {
        return Status::InvalidArgument("the SQLite database path is empty");
    }
    if (options.path == ":memory:") {
        return Status::InvalidArgument(
            "an in-memory SQLite database cannot be shared between connections; name a file");
    }
    if (options.reader_count < 1) {
        return Status::InvalidArgument("the SQLite store needs at least one reader connection");
    }

    // The writer opens first: it creates the file and switches it to WAL
    // mode before any reader connects.
    Result<std::unique_ptr<Connection>> writer = Connection::Open(
        options.path, {.busy_timeout = options.busy_timeout, .create = true, .read_only = false});
    if (!writer.ok()) {
        return writer.status();
    }
    std::vector<std::unique_ptr<Connection>> readers;
    for (int i = 0; i < options.reader_count; ++i) {
        Result<std::unique_ptr<Connection>> reader = Connection::Open(
            options.path,
            {.busy_timeout = options.busy_timeout, .create = false, .read_only = true});
        if (!reader.ok()) {
            return reader.status();
        }
        readers.push_back(std::move(*reader));
    }
    return std::unique_ptr<SqliteTaskStore>(
        new SqliteTaskStore(std::move(*writer), std::move(readers)));
}

SqliteTaskStore::ReaderLease SqliteTaskStore::AcquireReader() {
    std::unique_lock lock(readers_mutex_);
    reader_returned_.wait(lock, [this] { return !idle_readers_.empty(); });
    std::unique_ptr<Connection> reader = std::move(idle_readers_.back());
    idle_readers_.pop_back();
    return ReaderLease(*this, std::move(reader));
}

void SqliteTaskStore::ReturnReader(std::unique_ptr<Connection> reader) {
    {
        std::lock_guard lock(readers_mutex_);
        idle_readers_.push_back(std::move(reader));
    }
    reader_returned_.notify_one();
}

Status SqliteTaskStore::Migrate() {
    std::lock_guard lock(writer_mutex_);
    return sqlite::ApplyMigrations(*writer_, NowMillis());
}

Result<std::string> SqliteTaskStore::CursorKey() {
    std::lock_guard key_lock(cursor_key_mutex_);
    if (cursor_key_) {
        return *cursor_key_;
    }

    ReaderLease reader = AcquireReader();
    Result<StatementHandle> select = reader->Prepare(sqlite::kSelectMetaSql);
    if (!select.ok()) {
        return select.status();
    }
    (*select)->BindText(1, sqlite::kCursorKeyName);
    Result<bool> row = (*select)->Step();
    if (!row.ok()) {
        return row.status();
    }
    if (!*row) {
        return Status::Internal("no cursor key in '" + reader->path() + "'; run Migrate first");
    }
    Result<std::string> key = DecodeHex((*select)->ColumnText(0));
    if (!key.ok()) {
        return key.status();
    }
    if (key->size() != sqlite::kCursorKeyBytes) {
        return Status::Internal("the stored cursor key has " + std::to_string(key->size()) +
                                " bytes instead of " + std::to_string(sqlite::kCursorKeyBytes));
    }
    cursor_key_ = *key;
    return *cursor_key_;
}

Status SqliteTaskStore::Ping() {
    ReaderLease reader = AcquireReader();
    Result<StatementHandle> select = reader->Prepare(sqlite::kPingSql);
    if (!select.ok()) {
        return select.status();
    }
    return (*select)->Run();
}

namespace {

// Looks up an idempotency key inside the caller's write transaction.
// Returns the outcome when the key was seen before, nullopt when it is new.
Result<std::optional<CreateOutcome>> FindKey(Connection& db, const std::string& tenant,
                                             const IdempotencyKey& key) {
    Result<StatementHandle> select = db.Prepare(sqlite::kSelectIdempotencyKeySql);
    if (!select.ok()) {
        return select.status();
    }
    (*select)->BindText(1, tenant);
    (*select)->BindText(2, key.key);
    Result<bool> found = (*select)->Step();
    if (!found.ok()) {
        return found.status();
    }
    if (!*found) {
        return std::optional<CreateOutcome>();
    }
    if ((*select)->ColumnText(0) != key.request_hash) {
        return std::optional(CreateOutcome{CreateDisposition::kKeyReused, Task{}});
    }

    const std::string task_id = (*select)->ColumnText(1);
    Result<std::optional<Task>> existing = SelectTask(db, tenant, task_id);
    if (!existing.ok()) {
        return existing.status();
    }
    if (!*existing) {
        return Status::Internal("idempotency key '" + key.key + "' names task " + task_id +
                                ", which does not exist");
    }
    return std::optional(CreateOutcome{CreateDisposition::kReplayed, std::move(**existing)});
}

// Inserts the task row and its text, and returns the task row's id.
Result<std::int64_t> InsertTask(Connection& db, const NewTask& task) {
    Result<StatementHandle> insert = db.Prepare(sqlite::kInsertTaskSql);
    if (!insert.ok()) {
        return insert.status();
    }
    (*insert)->BindText(1, task.task_id);
    (*insert)->BindText(2, task.tenant);
    (*insert)->BindText(3, task.type);
    (*insert)->BindText(4, task.params_json);
    (*insert)->BindOptionalText(5, task.metadata_json);
    (*insert)->BindInt64(6, static_cast<std::int64_t>(task.text.size()));
    (*insert)->BindInt64(7, task.max_attempts);
    (*insert)->BindInt64(8, task.created_at);
    (*insert)->BindOptionalText(9, task.traceparent);
    if (Status status = (*insert)->Run(); !status.ok()) {
        if ((*insert)->failed_code() == SQLITE_CONSTRAINT_UNIQUE) {
            return Status::Conflict("task id " + task.task_id +
                                    " already exists; retry with a new id");
        }
        return status;
    }
    const std::int64_t row_id = db.LastInsertRowId();

    Result<StatementHandle> insert_text = db.Prepare(sqlite::kInsertTextSql);
    if (!insert_text.ok()) {
        return insert_text.status();
    }
    (*insert_text)->BindInt64(1, row_id);
    (*insert_text)->BindBlob(2, task.text);
    if (Status status = (*insert_text)->Run(); !status.ok()) {
        return status;
    }
    return row_id;
}

Status InsertKey(Connection& db, const NewTask& task, const IdempotencyKey& key) {
    Result<StatementHandle> insert = db.Prepare(sqlite::kInsertIdempotencyKeySql);
    if (!insert.ok()) {
        return insert.status();
    }
    (*insert)->BindText(1, task.tenant);
    (*insert)->BindText(2, key.key);
    (*insert)->BindText(3, key.request_hash);
    (*insert)->BindText(4, task.task_id);
    (*insert)->BindInt64(5, task.created_at);
    return (*insert)->Run();
}

// Returns the task as Create stored it, without reading it back.
Task NewPendingTask(const NewTask& task) {
    Task created;
    created.task_id = task.task_id;
    created.tenant = task.tenant;
    created.type = task.type;
    created.status = TaskStatus::kPending;
    created.params_json = task.params_json;
    created.metadata_json = task.metadata_json;
    created.text_bytes = static_cast<std::int64_t>(task.text.size());
    created.max_attempts = task.max_attempts;
    created.created_at = task.created_at;
    created.updated_at = task.created_at;
    return created;
}

// Returns the statuses that one list statement each covers, where nullopt
// means any status. SQLite would sort every matching row to order an IN list
// across several statuses, so each status gets its own index range scan.
std::vector<std::optional<TaskStatus>> ListArms(const std::vector<TaskStatus>& requested) {
    const std::set<TaskStatus> statuses(requested.begin(), requested.end());
    constexpr std::size_t kStatusCount = 5;
    if (statuses.empty() || statuses.size() == kStatusCount) {
        return {std::nullopt};
    }
    return {statuses.begin(), statuses.end()};
}

void BindListQuery(Statement& select, const ListQuery& query, std::optional<TaskStatus> status) {
    select.BindText(1, query.tenant);
    if (status) {
        select.BindText(2, ToString(*status));
    }
    if (query.type) {
        select.BindText(3, *query.type);
    }
    if (query.created_after) {
        select.BindInt64(4, *query.created_after);
    }
    if (query.created_before) {
        select.BindInt64(5, *query.created_before);
    }
    if (query.after) {
        select.BindInt64(6, query.after->created_at);
        select.BindText(7, query.after->task_id);
    }
    select.BindInt64(8, query.limit + 1);
}

// A claimed row before its text is loaded.
struct ClaimedRow {
    std::int64_t row_id = 0;
    UnixMillis eligible_at = 0;
    Task task;
};

Result<std::vector<ClaimedRow>> ClaimRows(Connection& db, std::string_view owner, int limit,
                                          UnixMillis now, Millis lease) {
    Result<StatementHandle> claim = db.Prepare(sqlite::kClaimSql);
    if (!claim.ok()) {
        return claim.status();
    }
    (*claim)->BindText(1, owner);
    (*claim)->BindInt64(2, now + lease.count());
    (*claim)->BindInt64(3, now);
    (*claim)->BindInt64(4, limit);
    std::vector<ClaimedRow> rows;
    Status status = ForEachRow(**claim, [&](Statement& row) {
        Result<Task> task = ReadTask(row, 3, true);
        if (!task.ok()) {
            return task.status();
        }
        task->traceparent = row.ColumnOptionalText(2);
        rows.push_back(ClaimedRow{row.ColumnInt64(0), row.ColumnInt64(1), std::move(*task)});
        return Status::Ok();
    });
    if (!status.ok()) {
        return status;
    }
    return rows;
}

Status LoadTexts(Connection& db, std::vector<ClaimedRow>& rows) {
    for (ClaimedRow& row : rows) {
        Result<StatementHandle> select = db.Prepare(sqlite::kSelectTextSql);
        if (!select.ok()) {
            return select.status();
        }
        (*select)->BindInt64(1, row.row_id);
        Result<bool> found = (*select)->Step();
        if (!found.ok()) {
            return found.status();
        }
        if (!*found) {
            return Status::Internal("task " + row.task.task_id + " has no stored text");
        }
        row.task.text = (*select)->ColumnBytes(0);
    }
    return Status::Ok();
}

Result<std::vector<std::string>> RenewRows(Connection& db, std::string_view owner, UnixMillis now,
                                           Millis lease) {
    Result<StatementHandle> renew = db.Prepare(sqlite::kRenewLeasesSql);
    if (!renew.ok()) {
        return renew.status();
    }
    (*renew)->BindText(1, owner);
    (*renew)->BindInt64(2, now + lease.count());
    return ReadIds(**renew);
}

// A PROCESSING task whose lease had expired when the reaper looked.
struct ExpiredLease {
    std::int64_t row_id = 0;
    std::string task_id;
    std::string owner;
    int attempts = 0;
    bool requeue = false;  // attempts left: back to PENDING, else FAILED
    UnixMillis eligible_at = 0;
};

Result<std::vector<ExpiredLease>> FindExpired(Connection& db, UnixMillis now, int limit,
                                              const std::function<Millis(int attempts)>& backoff) {
    Result<StatementHandle> select = db.Prepare(sqlite::kSelectExpiredSql);
    if (!select.ok()) {
        return select.status();
    }
    (*select)->BindInt64(1, now);
    (*select)->BindInt64(2, limit);
    std::vector<ExpiredLease> expired;
    Status status = ForEachRow(**select, [&](Statement& row) {
        ExpiredLease lease;
        lease.row_id = row.ColumnInt64(0);
        lease.owner = row.ColumnText(1);
        lease.attempts = static_cast<int>(row.ColumnInt64(2));
        lease.requeue = lease.attempts < row.ColumnInt64(3);
        lease.task_id = row.ColumnText(4);
        lease.eligible_at = lease.requeue ? now + backoff(lease.attempts).count() : now;
        expired.push_back(std::move(lease));
        return Status::Ok();
    });
    if (!status.ok()) {
        return status;
    }
    return expired;
}

// Writes one reaper decision and returns whether the row still matched.
Result<bool> ReapOne(Connection& db, const ExpiredLease& lease, UnixMillis now) {
    Result<StatementHandle> update =
        db.Prepare(lease.requeue ? sqlite::kReapRequeueSql : sqlite::kReapFailSql);
    if (!update.ok()) {
        return update.status();
    }
    (*update)->BindInt64(1, lease.row_id);
    (*update)->BindText(2, lease.owner);
    (*update)->BindInt64(3, lease.attempts);
    (*update)->BindInt64(4, now);
    (*update)->BindText(5, kWorkerLostMessage);
    if (lease.requeue) {
        (*update)->BindInt64(6, lease.eligible_at);
    }
    if (Status status = (*update)->Run(); !status.ok()) {
        return status;
    }
    return db.Changes() > 0;
}

}  // namespace

Result<CreateOutcome> SqliteTaskStore::Create(const NewTask& task,
                                              const std::optional<IdempotencyKey>& key) {
    PendingCreate mine{&task, &key, std::nullopt};
    std::unique_lock lock(batch_mutex_);
    batch_queue_.push_back(&mine);
    while (!mine.result) {
        if (batch_leader_active_) {
            batch_committed_.wait(lock);
            continue;
        }
        // No commit is running: this thread commits everything queued so
        // far, its own submission included, and wakes the others.
        batch_leader_active_ = true;
        std::vector<PendingCreate*> batch;
        batch.swap(batch_queue_);
        lock.unlock();
        CommitBatch(batch);
        lock.lock();
        batch_leader_active_ = false;
        batch_committed_.notify_all();
    }
    return std::move(*mine.result);
}

namespace {

// Stores one submission inside the batch's transaction. Returns the outcome,
// or the error that fails this submission alone (kConflict for a task id
// that already exists); any other error fails the whole batch.
Result<CreateOutcome> CreateOne(sqlite::Connection& db, const NewTask& task,
                                const std::optional<IdempotencyKey>& key) {
    // The key is looked up under the write lock, so of several requests
    // with the same key, in any process or in this batch, exactly one
    // reaches the insert.
    if (key) {
        Result<std::optional<CreateOutcome>> seen = FindKey(db, task.tenant, *key);
        if (!seen.ok()) {
            return seen.status();
        }
        if (*seen) {
            return std::move(**seen);
        }
    }
    if (Result<std::int64_t> row_id = InsertTask(db, task); !row_id.ok()) {
        return row_id.status();
    }
    if (key) {
        if (Status status = InsertKey(db, task, *key); !status.ok()) {
            return status;
        }
    }
    return CreateOutcome{CreateDisposition::kCreated, NewPendingTask(task)};
}

}  // namespace

void SqliteTaskStore::CommitBatch(const std::vector<PendingCreate*>& batch) {
    auto fail_all = [&batch](const Status& status) {
        for (PendingCreate* pending : batch) {
            pending->result = status;
        }
    };
    std::lock_guard lock(writer_mutex_);
    Connection& db = *writer_;
    Transaction transaction(db);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        fail_all(status);
        return;
    }
    std::vector<Result<CreateOutcome>> outcomes;
    outcomes.reserve(batch.size());
    for (PendingCreate* pending : batch) {
        Result<CreateOutcome> outcome = CreateOne(db, *pending->task, *pending->key);
        // SQLite undoes only the failed statement on a constraint error, so
        // a duplicate task id fails its own submission and not the batch.
        if (!outcome.ok() && outcome.status().code() != StatusCode::kConflict) {
            fail_all(outcome.status());
            return;
        }
        outcomes.push_back(std::move(outcome));
    }
    if (Status status = transaction.Commit(); !status.ok()) {
        fail_all(status);
        return;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        batch[i]->result = std::move(outcomes[i]);
    }
}

std::vector<Result<CreateOutcome>> SqliteTaskStore::CreateBatch(
    std::span<const CreateRequest> requests) {
    std::vector<PendingCreate> pending;
    pending.reserve(requests.size());
    std::vector<PendingCreate*> batch;
    batch.reserve(requests.size());
    for (const CreateRequest& request : requests) {
        pending.push_back(PendingCreate{request.task, request.key, std::nullopt});
        batch.push_back(&pending.back());
    }
    CommitBatch(batch);
    std::vector<Result<CreateOutcome>> results;
    results.reserve(pending.size());
    for (PendingCreate& one : pending) {
        results.push_back(std::move(*one.result));
    }
    return results;
}

Result<Task> SqliteTaskStore::Get(std::string_view tenant, std::string_view task_id,
                                  bool include_text) {
    ReaderLease reader = AcquireReader();
    if (!include_text) {
        Result<std::optional<Task>> task = SelectTask(*reader, tenant, task_id);
        if (!task.ok()) {
            return task.status();
        }
        if (!*task) {
            return TaskNotFound(tenant, task_id);
        }
        return std::move(**task);
    }

    // One statement reads the row and its text from the same snapshot.
    Result<StatementHandle> select = reader->Prepare(sqlite::kSelectTaskWithTextSql);
    if (!select.ok()) {
        return select.status();
    }
    (*select)->BindText(1, task_id);
    (*select)->BindText(2, tenant);
    Result<std::optional<Task>> task = ReadOneTask(**select);
    if (!task.ok()) {
        return task.status();
    }
    if (!*task) {
        return TaskNotFound(tenant, task_id);
    }
    constexpr int kTextColumn = kResultJson + 1;
    if ((*select)->ColumnIsNull(kTextColumn)) {
        return Status::Internal("task " + std::string(task_id) + " has no stored text");
    }
    (*task)->text = (*select)->ColumnBytes(kTextColumn);
    return std::move(**task);
}

Result<std::int64_t> SqliteTaskStore::CountPending(std::string_view tenant, std::int64_t limit) {
    ReaderLease reader = AcquireReader();
    Result<StatementHandle> select = reader->Prepare(sqlite::kSelectPendingSql);
    if (!select.ok()) {
        return select.status();
    }
    (*select)->BindText(1, tenant);
    (*select)->BindInt64(2, limit);
    std::int64_t count = 0;
    while (true) {
        Result<bool> row = (*select)->Step();
        if (!row.ok()) {
            return row.status();
        }
        if (!*row) {
            return count;
        }
        ++count;
    }
}

Result<TaskStats> SqliteTaskStore::Stats() {
    ReaderLease reader = AcquireReader();
    Result<StatementHandle> counts = reader->Prepare(sqlite::kSelectTaskCountsSql);
    if (!counts.ok()) {
        return counts.status();
    }
    TaskStats stats;
    Status status = ForEachRow(**counts, [&](Statement& row) {
        Result<TaskStatus> task_status = ReadStatus(row, 0);
        if (!task_status.ok()) {
            return task_status.status();
        }
        stats.by_status[static_cast<std::size_t>(*task_status)] = row.ColumnInt64(1);
        return Status::Ok();
    });
    if (!status.ok()) {
        return status;
    }

    Result<StatementHandle> head = reader->Prepare(sqlite::kSelectClaimHeadSql);
    if (!head.ok()) {
        return head.status();
    }
    Result<bool> found = (*head)->Step();
    if (!found.ok()) {
        return found.status();
    }
    if (*found) {
        stats.earliest_pending_eligible_at = (*head)->ColumnInt64(0);
    }
    return stats;
}

Result<std::vector<std::pair<std::string, TaskStatus>>> SqliteTaskStore::GetStatuses(
    const std::vector<std::string>& task_ids) {
    std::vector<std::string> ids = task_ids;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<std::pair<std::string, TaskStatus>> statuses;
    if (ids.empty()) {
        return statuses;
    }

    ReaderLease reader = AcquireReader();
    for (std::size_t start = 0; start < ids.size(); start += sqlite::kStatusBatchSize) {
        // One statement with a fixed number of placeholders serves every
        // batch; the unused ones are NULL, which IN never matches.
        Result<StatementHandle> select = reader->Prepare(sqlite::kSelectStatusesSql);
        if (!select.ok()) {
            return select.status();
        }
        for (int i = 0; i < sqlite::kStatusBatchSize; ++i) {
            const std::size_t index = start + static_cast<std::size_t>(i);
            if (index < ids.size()) {
                (*select)->BindText(i + 1, ids[index]);
            } else {
                (*select)->BindNull(i + 1);
            }
        }
        Status status = ForEachRow(**select, [&](Statement& row) {
            Result<TaskStatus> task_status = ReadStatus(row, 1);
            if (!task_status.ok()) {
                return task_status.status();
            }
            statuses.emplace_back(row.ColumnText(0), *task_status);
            return Status::Ok();
        });
        if (!status.ok()) {
            return status;
        }
    }
    return statuses;
}

Result<TaskPage> SqliteTaskStore::List(const ListQuery& requested) {
    if (requested.limit < 1 || requested.limit > kMaxListLimit) {
        return Status::InvalidArgument("list limit " + std::to_string(requested.limit) +
                                       " is outside 1.." + std::to_string(kMaxListLimit));
    }
    const ListQuery query = TightenListBounds(requested);
    const std::vector<std::optional<TaskStatus>> arms = ListArms(query.statuses);
    const std::string sql = sqlite::ListSql(sqlite::ListShapeOf(query, arms.front().has_value()));

    // Every arm reads from one snapshot.
    ReaderLease reader = AcquireReader();
    Transaction snapshot(*reader);
    if (Status status = snapshot.Begin(Transaction::Mode::kDeferred); !status.ok()) {
        return status;
    }
    TaskPage page;
    for (const std::optional<TaskStatus>& arm : arms) {
        Result<StatementHandle> select = reader->Prepare(sql);
        if (!select.ok()) {
            return select.status();
        }
        BindListQuery(**select, query, arm);
        if (Status status = AppendTaskSummaries(**select, page.items); !status.ok()) {
            return status;
        }
    }
    if (Status status = snapshot.Commit(); !status.ok()) {
        return status;
    }

    std::sort(page.items.begin(), page.items.end(),
              [&](const Task& a, const Task& b) { return ComesBefore(a, b, query.descending); });
    const auto limit = static_cast<std::size_t>(query.limit);
    page.has_more = page.items.size() > limit;
    if (page.has_more) {
        page.items.resize(limit);
    }
    return page;
}

Result<Task> SqliteTaskStore::Cancel(std::string_view tenant, std::string_view task_id,
                                     UnixMillis now) {
    return ChangeStatus(sqlite::kCancelSql, tenant, task_id, now, TaskStatus::kCancelled);
}

Result<Task> SqliteTaskStore::Redrive(std::string_view tenant, std::string_view task_id,
                                      UnixMillis now) {
    return ChangeStatus(sqlite::kRedriveSql, tenant, task_id, now, std::nullopt);
}

// Runs a conditional UPDATE ... RETURNING. When it changes nothing, the task
// is missing (kNotFound), already in `unchanged_status` (returned as it is)
// or in a state the transition does not leave (kConflict).
Result<Task> SqliteTaskStore::ChangeStatus(const std::string& sql, std::string_view tenant,
                                           std::string_view task_id, UnixMillis now,
                                           std::optional<TaskStatus> unchanged_status) {
    std::lock_guard lock(writer_mutex_);
    Connection& db = *writer_;
    Transaction transaction(db);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        return status;
    }

    std::optional<Task> changed;
    {
        Result<StatementHandle> update = db.Prepare(sql);
        if (!update.ok()) {
            return update.status();
        }
        (*update)->BindText(1, task_id);
        (*update)->BindText(2, tenant);
        (*update)->BindInt64(3, now);
        Result<std::optional<Task>> task = ReadOneTask(**update);
        if (!task.ok()) {
            return task.status();
        }
        changed = std::move(*task);
    }
    if (changed) {
        if (Status status = transaction.Commit(); !status.ok()) {
            return status;
        }
        return std::move(*changed);
    }

    Result<std::optional<Task>> current = SelectTask(db, tenant, task_id);
    if (!current.ok()) {
        return current.status();
    }
    if (!*current) {
        return TaskNotFound(tenant, task_id);
    }
    if (unchanged_status && (*current)->status == *unchanged_status) {
        return std::move(**current);
    }
    return Status::Conflict("task " + std::string(task_id) + " is " +
                            std::string(ToString((*current)->status)));
}

Result<std::vector<ClaimedTask>> SqliteTaskStore::Claim(std::string_view owner, int limit,
                                                        UnixMillis now, Millis lease) {
    if (limit < 1) {
        return std::vector<ClaimedTask>();
    }
    std::vector<ClaimedRow> rows;
    {
        std::lock_guard lock(writer_mutex_);
        Transaction transaction(*writer_);
        if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
            return status;
        }
        Result<std::vector<ClaimedRow>> claimed = ClaimRows(*writer_, owner, limit, now, lease);
        if (!claimed.ok()) {
            return claimed.status();
        }
        rows = std::move(*claimed);
        if (Status status = LoadTexts(*writer_, rows); !status.ok()) {
            return status;
        }
        if (Status status = transaction.Commit(); !status.ok()) {
            return status;
        }
    }

    // RETURNING yields rows in no defined order, so sort them into claim order.
    std::sort(rows.begin(), rows.end(), [](const ClaimedRow& a, const ClaimedRow& b) {
        if (a.eligible_at != b.eligible_at) {
            return a.eligible_at < b.eligible_at;
        }
        return a.task.task_id < b.task.task_id;
    });
    std::vector<ClaimedTask> claimed;
    claimed.reserve(rows.size());
    for (ClaimedRow& row : rows) {
        Lease granted{row.task.task_id, std::string(owner), row.task.attempts};
        claimed.push_back(ClaimedTask{std::move(row.task), std::move(granted)});
    }
    return claimed;
}

Result<std::vector<std::string>> SqliteTaskStore::RenewLeases(std::string_view owner,
                                                              UnixMillis now, Millis lease) {
    std::lock_guard lock(writer_mutex_);
    Transaction transaction(*writer_);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        return status;
    }
    Result<std::vector<std::string>> held = RenewRows(*writer_, owner, now, lease);
    if (!held.ok()) {
        return held.status();
    }
    if (Status status = transaction.Commit(); !status.ok()) {
        return status;
    }
    return held;
}

Result<std::vector<std::string>> SqliteTaskStore::HeldLeases(std::string_view owner) {
    ReaderLease reader = AcquireReader();
    Result<StatementHandle> select = reader->Prepare(sqlite::kSelectHeldLeasesSql);
    if (!select.ok()) {
        return select.status();
    }
    (*select)->BindText(1, owner);
    return ReadIds(**select);
}

Result<FenceOutcome> SqliteTaskStore::FencedWrite(const std::string& sql, const Lease& lease,
                                                  const BindFunction& bind) {
    std::lock_guard lock(writer_mutex_);
    Transaction transaction(*writer_);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        return status;
    }
    int changes = 0;
    {
        Result<StatementHandle> update = writer_->Prepare(sql);
        if (!update.ok()) {
            return update.status();
        }
        (*update)->BindText(1, lease.task_id);
        (*update)->BindText(2, lease.owner);
        (*update)->BindInt64(3, lease.attempt);
        bind(**update);
        if (Status status = (*update)->Run(); !status.ok()) {
            return status;
        }
        changes = writer_->Changes();
    }
    if (Status status = transaction.Commit(); !status.ok()) {
        return status;
    }
    return changes > 0 ? FenceOutcome::kApplied : FenceOutcome::kLost;
}

Result<FenceOutcome> SqliteTaskStore::Complete(const Lease& lease, std::string_view result_json,
                                               UnixMillis now) {
    return FencedWrite(sqlite::kCompleteSql, lease, [&](Statement& update) {
        update.BindText(4, result_json);
        update.BindInt64(5, now);
    });
}

std::vector<Result<FenceOutcome>> SqliteTaskStore::CompleteBatch(
    std::span<const CompleteRequest> requests, UnixMillis now) {
    auto fail_all = [&requests](const Status& status) {
        return std::vector<Result<FenceOutcome>>(requests.size(), status);
    };
    std::lock_guard lock(writer_mutex_);
    Transaction transaction(*writer_);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        return fail_all(status);
    }
    std::vector<Result<FenceOutcome>> outcomes;
    outcomes.reserve(requests.size());
    for (const CompleteRequest& request : requests) {
        Result<StatementHandle> update = writer_->Prepare(sqlite::kCompleteSql);
        if (!update.ok()) {
            return fail_all(update.status());
        }
        (*update)->BindText(1, request.lease->task_id);
        (*update)->BindText(2, request.lease->owner);
        (*update)->BindInt64(3, request.lease->attempt);
        (*update)->BindText(4, request.result_json);
        (*update)->BindInt64(5, now);
        if (Status status = (*update)->Run(); !status.ok()) {
            return fail_all(status);
        }
        outcomes.emplace_back(writer_->Changes() > 0 ? FenceOutcome::kApplied
                                                     : FenceOutcome::kLost);
    }
    if (Status status = transaction.Commit(); !status.ok()) {
        return fail_all(status);
    }
    return outcomes;
}

Result<FenceOutcome> SqliteTaskStore::Fail(const Lease& lease, const TaskError& error,
                                           std::optional<UnixMillis> retry_at, UnixMillis now) {
    if (retry_at) {
        return FencedWrite(sqlite::kFailRetrySql, lease, [&](Statement& update) {
            update.BindText(4, error.code);
            update.BindText(5, error.message);
            update.BindInt64(6, *retry_at);
            update.BindInt64(7, now);
        });
    }
    return FencedWrite(sqlite::kFailFinalSql, lease, [&](Statement& update) {
        update.BindText(4, error.code);
        update.BindText(5, error.message);
        update.BindInt64(6, now);
    });
}

Result<FenceOutcome> SqliteTaskStore::HandBack(const Lease& lease, UnixMillis now) {
    return FencedWrite(sqlite::kHandBackSql, lease,
                       [&](Statement& update) { update.BindInt64(4, now); });
}

Result<ReapOutcome> SqliteTaskStore::ReapExpired(
    UnixMillis now, int limit, const std::function<Millis(int attempts)>& backoff) {
    if (limit < 1) {
        return ReapOutcome{};
    }

    // Candidates come from a reader. Each write re-checks that the lease is
    // the same one and still expired, so a reaper in another process, a
    // renewal or a finish that lands in between wins cleanly.
    Result<std::vector<ExpiredLease>> expired = [&] {
        ReaderLease reader = AcquireReader();
        return FindExpired(*reader, now, limit, backoff);
    }();
    if (!expired.ok()) {
        return expired.status();
    }
    if (expired->empty()) {
        return ReapOutcome{};
    }

    ReapOutcome outcome;
    std::lock_guard lock(writer_mutex_);
    Transaction transaction(*writer_);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        return status;
    }
    for (const ExpiredLease& lease : *expired) {
        Result<bool> reaped = ReapOne(*writer_, lease, now);
        if (!reaped.ok()) {
            return reaped.status();
        }
        if (*reaped) {
            ++(lease.requeue ? outcome.requeued : outcome.failed);
            (lease.requeue ? outcome.requeued_ids : outcome.failed_ids).push_back(lease.task_id);
        }
    }
    if (Status status = transaction.Commit(); !status.ok()) {
        return status;
    }
    return outcome;
}

Result<int> SqliteTaskStore::PruneFinished(UnixMillis finished_before, int limit) {
    if (limit < 1) {
        return 0;
    }
    std::lock_guard lock(writer_mutex_);
    Connection& db = *writer_;
    Transaction transaction(db);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        return status;
    }
    Result<StatementHandle> select = db.Prepare(sqlite::kSelectPrunableSql);
    if (!select.ok()) {
        return select.status();
    }
    (*select)->BindInt64(1, finished_before);
    (*select)->BindInt64(2, limit);
    std::vector<std::pair<std::int64_t, std::string>> doomed;
    Status listed = ForEachRow(**select, [&](Statement& row) {
        doomed.emplace_back(row.ColumnInt64(0), row.ColumnText(1));
        return Status::Ok();
    });
    if (!listed.ok()) {
        return listed;
    }

    // Keys and the text go first: both reference the task row.
    for (const auto& [row_id, task_id] : doomed) {
        for (const std::string* sql :
             {&sqlite::kDeleteKeysOfTaskSql, &sqlite::kDeleteTextSql, &sqlite::kDeleteTaskSql}) {
            Result<StatementHandle> remove = db.Prepare(*sql);
            if (!remove.ok()) {
                return remove.status();
            }
            if (sql == &sqlite::kDeleteKeysOfTaskSql) {
                (*remove)->BindText(1, task_id);
            } else {
                (*remove)->BindInt64(1, row_id);
            }
            if (Status status = (*remove)->Run(); !status.ok()) {
                return status;
            }
        }
    }
    if (Status status = transaction.Commit(); !status.ok()) {
        return status;
    }
    return static_cast<int>(doomed.size());
}

}  // namespace conveyor
