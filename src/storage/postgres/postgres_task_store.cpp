#include "storage/postgres/postgres_task_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <unordered_set>
#include <utility>

#include "core/log.hpp"
#include "storage/list_bounds.hpp"
#include "storage/postgres/postgres_change_feed.hpp"
#include "storage/postgres/postgres_connection.hpp"
#include "storage/postgres/postgres_schema.hpp"
#include "storage/postgres/postgres_statements.hpp"

namespace conveyor {

using postgres::Connection;
using postgres::Params;
using postgres::QueryResult;
using postgres::Statement;
using postgres::Transaction;

namespace {

constexpr int kMaxListLimit = 1000;
constexpr int kMaxTransactionAttempts = 3;
// How often a write that found the row in an unexpected state, or a create
// whose key vanished, looks again before giving up. Each retry needs a
// concurrent change to land in the few microseconds between two statements.
constexpr int kMaxRaceRetries = 3;

// Group commits of one kind that run at once, each on its own connection:
// while one waits for its commit to reach the disk, another fills.
constexpr int kWriteLanes = 2;
constexpr std::size_t kStatusBatchSize = 1000;
constexpr char kWorkerLostMessage[] = "the worker's lease expired";
constexpr char kReplacementCharacter[] = "\xEF\xBF\xBD";

// Positions within the task columns.
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
static_assert(kResultJson == postgres::kTaskSummaryColumnCount);

Result<TaskStatus> ReadStatus(const QueryResult& rows, int row, int column) {
    const std::string text = rows.Text(row, column);
    const std::optional<TaskStatus> status = ParseTaskStatus(text);
    if (!status) {
        return Status::Internal("unknown task status '" + text + "' in the tasks table");
    }
    return *status;
}

// Reads the task columns, or the summary columns when `with_result` is
// false, starting at column `first` of `row`.
Result<Task> ReadTask(const QueryResult& rows, int row, int first, bool with_result) {
    Result<TaskStatus> status = ReadStatus(rows, row, first + kStatus);
    if (!status.ok()) {
        return status.status();
    }
    Task task;
    task.task_id = rows.Text(row, first + kTaskId);
    task.tenant = rows.Text(row, first + kTenant);
    task.type = rows.Text(row, first + kType);
    task.status = *status;
    task.params_json = rows.Text(row, first + kParamsJson);
    task.metadata_json = rows.OptionalText(row, first + kMetadataJson);
    task.text_bytes = rows.Int64(row, first + kTextBytes);
    task.attempts = static_cast<int>(rows.Int64(row, first + kAttempts));
    task.max_attempts = static_cast<int>(rows.Int64(row, first + kMaxAttempts));
    task.created_at = rows.Int64(row, first + kCreatedAt);
    task.updated_at = rows.Int64(row, first + kUpdatedAt);
    task.started_at = rows.OptionalInt64(row, first + kStartedAt);
    task.finished_at = rows.OptionalInt64(row, first + kFinishedAt);
    task.next_attempt_at = rows.OptionalInt64(row, first + kNextAttemptAt);
    if (!rows.IsNull(row, first + kErrorCode)) {
        task.error = TaskError{rows.Text(row, first + kErrorCode),
                               rows.OptionalText(row, first + kErrorMessage).value_or("")};
    }
    if (with_result) {
        task.result_json = rows.OptionalText(row, first + kResultJson);
    }
    return task;
}

Result<std::vector<std::string>> ReadIds(Result<QueryResult> rows) {
    if (!rows.ok()) {
        return rows.status();
    }
    std::vector<std::string> ids;
    ids.reserve(static_cast<std::size_t>(rows->rows()));
    for (int row = 0; row < rows->rows(); ++row) {
        ids.push_back(rows->Text(row, 0));
    }
    return ids;
}

Status TaskNotFound(std::string_view tenant, std::string_view task_id) {
    return Status::NotFound("task " + std::string(task_id) + " not found for tenant '" +
                            std::string(tenant) + "'");
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

// Returns the length of the valid UTF-8 sequence at the start of `text`,
// or 0 when it starts with an invalid one. Overlong forms, surrogates and
// code points past U+10FFFF are invalid (RFC 3629).
std::size_t Utf8SequenceLength(std::string_view text) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(0);
    if (lead < 0x80) {
        return 1;
    }
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        low = lead == 0xE0 ? 0xA0 : 0x80;
        high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        low = lead == 0xF0 ? 0x90 : 0x80;
        high = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (text.size() < length || byte(1) < low || byte(1) > high) {
        return 0;
    }
    for (std::size_t i = 2; i < length; ++i) {
        if (byte(i) < 0x80 || byte(i) > 0xBF) {
            return 0;
        }
    }
    return length;
}

// Returns `text` with each NUL byte and each invalid UTF-8 byte replaced by
// U+FFFD, so that a PostgreSQL text column accepts it.
std::string ToStorableText(std::string_view text) {
    std::string storable;
    storable.reserve(text.size());
    while (!text.empty()) {
        const std::size_t length = Utf8SequenceLength(text);
        if (length == 0 || text.front() == '\0') {
            storable += kReplacementCharacter;
            text.remove_prefix(1);
            continue;
        }
        storable.append(text.substr(0, length));
        text.remove_prefix(length);
    }
    return storable;
}

// Returns the statuses that one list statement each covers, where nullopt
// means any status. An index range per status returns rows already in
// (created_at, task_id) order, where `status = ANY (...)` would need a sort
// of every matching row.
std::vector<std::optional<TaskStatus>> ListArms(const std::vector<TaskStatus>& requested) {
    const std::set<TaskStatus> statuses(requested.begin(), requested.end());
    constexpr std::size_t kStatusCount = 5;
    if (statuses.empty() || statuses.size() == kStatusCount) {
        return {std::nullopt};
    }
    return {statuses.begin(), statuses.end()};
}

// Orders list rows the way the page walks: by (created_at, task_id).
bool ComesBefore(const Task& a, const Task& b, bool descending) {
    if (a.created_at != b.created_at) {
        return descending ? a.created_at > b.created_at : a.created_at < b.created_at;
    }
    return descending ? a.task_id > b.task_id : a.task_id < b.task_id;
}

Status AppendTaskSummaries(Result<QueryResult> rows, std::vector<Task>& tasks) {
    if (!rows.ok()) {
        return rows.status();
    }
    for (int row = 0; row < rows->rows(); ++row) {
        Result<Task> task = ReadTask(*rows, row, 0, false);
        if (!task.ok()) {
            return task.status();
        }
        tasks.push_back(std::move(*task));
    }
    return Status::Ok();
}

Result<std::vector<ClaimedTask>> ReadClaimedTasks(const QueryResult& rows, std::string_view owner) {
    constexpr int kTextColumn = kResultJson + 1;
    std::vector<ClaimedTask> claimed;
    claimed.reserve(static_cast<std::size_t>(rows.rows()));
    for (int row = 0; row < rows.rows(); ++row) {
        Result<Task> task = ReadTask(rows, row, 0, true);
        if (!task.ok()) {
            return task.status();
        }
        if (rows.IsNull(row, kTextColumn)) {
            return Status::Internal("task " + task->task_id + " has no stored text");
        }
        task->text = rows.Text(row, kTextColumn);
        task->traceparent = rows.OptionalText(row, kTextColumn + 1);
        Lease lease{task->task_id, std::string(owner), task->attempts};
        claimed.push_back(ClaimedTask{std::move(*task), std::move(lease)});
    }
    return claimed;
}

// The candidates of one reaper pass, split by what happens to them.
struct ReapPlan {
    std::vector<std::string> requeue_ids;
    std::vector<std::string> requeue_owners;
    std::vector<std::int64_t> requeue_attempts;
    std::vector<std::int64_t> requeue_eligible_at;
    std::vector<std::string> fail_ids;
    std::vector<std::string> fail_owners;
    std::vector<std::int64_t> fail_attempts;
};

ReapPlan PlanReap(const QueryResult& expired, UnixMillis now,
                  const std::function<Millis(int attempts)>& backoff) {
    ReapPlan plan;
    for (int row = 0; row < expired.rows(); ++row) {
        const int attempts = static_cast<int>(expired.Int64(row, 2));
        const bool requeue = attempts < expired.Int64(row, 3);
        if (requeue) {
            plan.requeue_ids.push_back(expired.Text(row, 0));
            plan.requeue_owners.push_back(expired.Text(row, 1));
            plan.requeue_attempts.push_back(attempts);
            plan.requeue_eligible_at.push_back(now + backoff(attempts).count());
        } else {
            plan.fail_ids.push_back(expired.Text(row, 0));
            plan.fail_owners.push_back(expired.Text(row, 1));
            plan.fail_attempts.push_back(attempts);
        }
    }
    return plan;
}

bool LeavesByCancel(TaskStatus status) {
    return status == TaskStatus::kPending || status == TaskStatus::kProcessing;
}

bool LeavesByRedrive(TaskStatus status) {
    return status == TaskStatus::kFailed || status == TaskStatus::kCancelled;
}

}  // namespace

// A pooled connection on loan. The destructor returns it to the pool.
class PostgresTaskStore::ConnectionLease {
  public:
    ConnectionLease(PostgresTaskStore& store, std::unique_ptr<Connection> connection)
        : store_(&store), connection_(std::move(connection)) {}
    ~ConnectionLease() {
        if (store_ != nullptr) {
            store_->Release(std::move(connection_));
        }
    }
    ConnectionLease(ConnectionLease&& other) noexcept
        : store_(std::exchange(other.store_, nullptr)), connection_(std::move(other.connection_)) {}
    ConnectionLease& operator=(ConnectionLease&&) = delete;
    ConnectionLease(const ConnectionLease&) = delete;
    ConnectionLease& operator=(const ConnectionLease&) = delete;

    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_.get(); }

  private:
    PostgresTaskStore* store_;
    std::unique_ptr<Connection> connection_;
};

PostgresTaskStore::PostgresTaskStore(PostgresOptions options)
    : options_(std::move(options)), target_(postgres::DescribeTarget(options_.url)) {
    idle_.resize(static_cast<std::size_t>(options_.pool_size));
    notifier_ = std::thread([this] { RunSubmissionNotifier(); });
}

PostgresTaskStore::~PostgresTaskStore() {
    {
        std::lock_guard lock(notice_mutex_);
        notifier_stopping_ = true;
    }
    notice_requested_.notify_one();
    notifier_.join();
}

Result<std::unique_ptr<PostgresTaskStore>> PostgresTaskStore::Open(PostgresOptions options) {
    if (options.pool_size < 1) {
        return Status::InvalidArgument("the PostgreSQL connection pool needs at least one slot");
    }
    char* parse_error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &parse_error);
    if (parsed == nullptr) {
        // libpq's message may quote part of the URL, and so of a password.
        PQfreemem(parse_error);
        return Status::InvalidArgument(
            "the PostgreSQL URL is invalid; expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE");
    }
    PQconninfoFree(parsed);
    return std::unique_ptr<PostgresTaskStore>(new PostgresTaskStore(std::move(options)));
}

Result<PostgresTaskStore::ConnectionLease> PostgresTaskStore::Acquire() {
    std::unique_ptr<Connection> connection;
    {
        std::unique_lock lock(pool_mutex_);
        if (!connection_returned_.wait_for(lock, options_.acquire_timeout,
                                           [this] { return !idle_.empty(); })) {
            return Status::Unavailable("no PostgreSQL connection became free within " +
                                       std::to_string(options_.acquire_timeout.count()) + " ms");
        }
        connection = std::move(idle_.back());
        idle_.pop_back();
    }
    if (connection != nullptr && !connection->CheckIdle()) {
        log::Warn("postgres", "replacing a connection that the server closed",
                  {{"target", target_}});
        connection.reset();
    }
    if (connection == nullptr) {
        Result<std::unique_ptr<Connection>> opened = Connection::Open(options_.url);
        if (!opened.ok()) {
            Release(nullptr);
            return opened.status();
        }
        connection = std::move(*opened);
    }
    return ConnectionLease(*this, std::move(connection));
}

void PostgresTaskStore::Release(std::unique_ptr<Connection> connection) {
    if (connection != nullptr && !(connection->usable() && connection->idle_in_no_transaction())) {
        log::Warn("postgres", "dropping a lost connection, which the next call replaces",
                  {{"target", target_}});
        connection.reset();
    }
    {
        std::lock_guard lock(pool_mutex_);
        if (connection == nullptr) {
            idle_.insert(idle_.begin(), nullptr);
        } else {
            idle_.push_back(std::move(connection));
        }
    }
    connection_returned_.notify_one();
}

template <typename Work>
auto PostgresTaskStore::Run(Work work) {
    using Outcome = decltype(work(std::declval<Connection&>()));
    for (int attempt = 1;; ++attempt) {
        Result<ConnectionLease> lease = Acquire();
        if (!lease.ok()) {
            return Outcome(lease.status());
        }
        Connection& connection = **lease;
        connection.TakeRetryableFailure();
        Outcome outcome = work(connection);
        if (outcome.ok() || !connection.TakeRetryableFailure() ||
            attempt >= kMaxTransactionAttempts) {
            return outcome;
        }
        log::Debug("postgres", "retrying a transaction after a serialization failure or deadlock",
                   {{"attempt", attempt}});
    }
}

Status PostgresTaskStore::Migrate() {
    return Run(
        [](Connection& connection) { return postgres::ApplyMigrations(connection, NowMillis()); });
}

Result<std::string> PostgresTaskStore::CursorKey() {
    std::lock_guard key_lock(cursor_key_mutex_);
    if (cursor_key_) {
        return *cursor_key_;
    }
    Result<std::string> key = Run([](Connection& connection) -> Result<std::string> {
        Result<QueryResult> rows =
            connection.Execute(postgres::kSelectMeta, Params().Text(postgres::kCursorKeyName));
        if (!rows.ok()) {
            return rows.status();
        }
        if (rows->rows() == 0) {
            return Status::Internal("no cursor key in the meta table; run Migrate first");
        }
        return rows->Text(0, 0);
    });
    if (!key.ok()) {
        return key.status();
    }
    if (key->size() != postgres::kCursorKeyBytes) {
        return Status::Internal("the stored cursor key has " + std::to_string(key->size()) +
                                " bytes instead of " + std::to_string(postgres::kCursorKeyBytes));
    }
    cursor_key_ = *key;
    return *cursor_key_;
}

Status PostgresTaskStore::Ping() {
    return Run([](Connection& connection) -> Status {
        Result<QueryResult> rows = connection.Execute(postgres::kPing, Params());
        return rows.ok() ? Status::Ok() : rows.status();
    });
}

std::unique_ptr<ChangeFeed> PostgresTaskStore::OpenChangeFeed() {
    return postgres::PostgresChangeFeed::Create(options_.url);
}

namespace {

// The parameters of kInsertTask, or of kInsertTaskWithKey when there is a key.
Params CreateParams(const NewTask& task, const std::optional<IdempotencyKey>& key) {
    Params params;
    params.Text(task.task_id)
        .Text(task.tenant)
        .Text(task.type)
        .Text(task.params_json)
        .OptionalText(task.metadata_json)
        .Int64(static_cast<std::int64_t>(task.text.size()))
        .Int64(task.max_attempts)
        .Int64(task.created_at)
        .Bytes(task.text);
    if (key) {
        params.Text(key->key).Text(key->request_hash);
    }
    params.OptionalText(task.traceparent);
    return params;
}

// Runs one insert of a submission. Returns the outcome, kConflict when the
// task id exists, or std::nullopt when the key was seen but vanished before
// it could be read (pruning deleted it), which the caller tries again.
Result<std::optional<CreateOutcome>> CreateOnce(Connection& connection, const NewTask& task,
                                                const std::optional<IdempotencyKey>& key,
                                                const Params& params) {
    const Statement& insert = key ? postgres::kInsertTaskWithKey : postgres::kInsertTask;
    Result<QueryResult> inserted = connection.Execute(insert, params);
    if (!inserted.ok()) {
        if (inserted.status().code() == StatusCode::kConflict) {
            return Status::Conflict("task id " + task.task_id +
                                    " already exists; retry with a new id");
        }
        return inserted.status();
    }
    if (inserted->rows() == 1) {
        return std::optional(CreateOutcome{CreateDisposition::kCreated, NewPendingTask(task)});
    }

    Result<QueryResult> seen =
        connection.Execute(postgres::kSelectKey, Params().Text(task.tenant).Text(key->key));
    if (!seen.ok()) {
        return seen.status();
    }
    if (seen->rows() == 0) {
        return std::optional<CreateOutcome>();
    }
    if (seen->Text(0, 0) != key->request_hash) {
        return std::optional(CreateOutcome{CreateDisposition::kKeyReused, Task{}});
    }
    if (seen->IsNull(0, 1 + kTaskId)) {
        return Status::Internal("idempotency key '" + key->key + "' names no task");
    }
    Result<Task> existing = ReadTask(*seen, 0, 1, true);
    if (!existing.ok()) {
        return existing.status();
    }
    return std::optional(CreateOutcome{CreateDisposition::kReplayed, std::move(*existing)});
}

Status InvalidTaskId(const NewTask& task) {
    return Status::InvalidArgument("task id '" + task.task_id +
                                   "' is not a lower-case canonical UUID");
}

}  // namespace

Result<CreateOutcome> PostgresTaskStore::Create(const NewTask& task,
                                                const std::optional<IdempotencyKey>& key) {
    if (!postgres::IsCanonicalUuid(task.task_id)) {
        return InvalidTaskId(task);
    }
    const Params params = CreateParams(task, key);
    return Run([&](Connection& connection) -> Result<CreateOutcome> {
        // The key can vanish between the insert that found it and the read,
        // when pruning deletes it, so the pair is tried again.
        for (int attempt = 0; attempt < kMaxRaceRetries; ++attempt) {
            Result<std::optional<CreateOutcome>> outcome =
                CreateOnce(connection, task, key, params);
            if (!outcome.ok()) {
                return outcome.status();
            }
            if (*outcome) {
                if ((*outcome)->disposition == CreateDisposition::kCreated) {
                    RequestSubmissionNotice();
                }
                return std::move(**outcome);
            }
        }
        return Status::Unavailable("idempotency key '" + key->key +
                                   "' was deleted repeatedly while it was being read");
    });
}

std::vector<Result<CreateOutcome>> PostgresTaskStore::CreateBatch(
    std::span<const CreateRequest> requests) {
    using Outcomes = std::vector<Result<CreateOutcome>>;
    auto one_by_one = [&] {
        Outcomes outcomes;
        outcomes.reserve(requests.size());
        for (const CreateRequest& request : requests) {
            outcomes.push_back(Create(*request.task, *request.key));
        }
        return outcomes;
    };
    if (requests.size() == 1) {
        return one_by_one();
    }
    std::vector<Params> params;
    params.reserve(requests.size());
    for (const CreateRequest& request : requests) {
        params.push_back(CreateParams(*request.task, *request.key));
    }

    // Within one transaction an error ends the whole transaction, so a
    // request that fails on its own (a task id that exists, a key that
    // vanished) sends the batch back to one transaction per request.
    bool created_any = false;
    Result<Outcomes> batched = Run([&](Connection& connection) -> Result<Outcomes> {
        created_any = false;
        Transaction transaction(connection);
        if (Status status = transaction.Begin(); !status.ok()) {
            return status;
        }
        Outcomes outcomes;
        outcomes.reserve(requests.size());
        for (std::size_t i = 0; i < requests.size(); ++i) {
            const NewTask& task = *requests[i].task;
            if (!postgres::IsCanonicalUuid(task.task_id)) {
                outcomes.emplace_back(InvalidTaskId(task));
                continue;
            }
            Result<std::optional<CreateOutcome>> outcome =
                CreateOnce(connection, task, *requests[i].key, params[i]);
            if (!outcome.ok()) {
                return outcome.status();
            }
            if (!*outcome) {
                return Status::Conflict("an idempotency key vanished while it was being read");
            }
            created_any = created_any || (*outcome)->disposition == CreateDisposition::kCreated;
            outcomes.emplace_back(std::move(**outcome));
        }
        if (Status status = transaction.Commit(); !status.ok()) {
            return status;
        }
        return outcomes;
    });
    if (batched.ok()) {
        if (created_any) {
            RequestSubmissionNotice();
        }
        return std::move(*batched);
    }
    if (batched.status().code() == StatusCode::kConflict) {
        return one_by_one();
    }
    return Outcomes(requests.size(), batched.status());
}

Result<Task> PostgresTaskStore::Get(std::string_view tenant, std::string_view task_id,
                                    bool include_text) {
    if (!postgres::IsCanonicalUuid(task_id)) {
        return TaskNotFound(tenant, task_id);
    }
    const Statement& select = include_text ? postgres::kSelectTaskWithText : postgres::kSelectTask;
    return Run([&](Connection& connection) -> Result<Task> {
        Result<QueryResult> rows = connection.Execute(select, Params().Text(task_id).Text(tenant));
        if (!rows.ok()) {
            return rows.status();
        }
        if (rows->rows() == 0) {
            return TaskNotFound(tenant, task_id);
        }
        Result<Task> task = ReadTask(*rows, 0, 0, true);
        if (!task.ok() || !include_text) {
            return task;
        }
        constexpr int kTextColumn = kResultJson + 1;
        if (rows->IsNull(0, kTextColumn)) {
            return Status::Internal("task " + std::string(task_id) + " has no stored text");
        }
        task->text = rows->Text(0, kTextColumn);
        return task;
    });
}

Result<std::int64_t> PostgresTaskStore::CountPending(std::string_view tenant, std::int64_t limit) {
    return Run([&](Connection& connection) -> Result<std::int64_t> {
        Result<QueryResult> rows =
            connection.Execute(postgres::kCountPending, Params().Text(tenant).Int64(limit));
        if (!rows.ok()) {
            return rows.status();
        }
        return rows->Int64(0, 0);
    });
}

Result<std::vector<std::pair<std::string, TaskStatus>>> PostgresTaskStore::GetStatuses(
    const std::vector<std::string>& task_ids) {
    std::vector<std::string> ids;
    for (const std::string& id : task_ids) {
        if (postgres::IsCanonicalUuid(id)) {
            ids.push_back(id);
        }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    using Statuses = std::vector<std::pair<std::string, TaskStatus>>;
    if (ids.empty()) {
        return Statuses();
    }

    return Run([&](Connection& connection) -> Result<Statuses> {
        Statuses statuses;
        for (std::size_t start = 0; start < ids.size(); start += kStatusBatchSize) {
            const std::size_t end = std::min(ids.size(), start + kStatusBatchSize);
            const std::vector<std::string> batch(ids.begin() + static_cast<std::ptrdiff_t>(start),
                                                 ids.begin() + static_cast<std::ptrdiff_t>(end));
            Result<QueryResult> rows =
                connection.Execute(postgres::kSelectStatuses, Params().TextArray(batch));
            if (!rows.ok()) {
                return rows.status();
            }
            for (int row = 0; row < rows->rows(); ++row) {
                Result<TaskStatus> status = ReadStatus(*rows, row, 1);
                if (!status.ok()) {
                    return status.status();
                }
                statuses.emplace_back(rows->Text(row, 0), *status);
            }
        }
        return statuses;
    });
}

Result<TaskPage> PostgresTaskStore::List(const ListQuery& requested) {
    if (requested.limit < 1 || requested.limit > kMaxListLimit) {
        return Status::InvalidArgument("list limit " + std::to_string(requested.limit) +
                                       " is outside 1.." + std::to_string(kMaxListLimit));
    }
    const ListQuery query = TightenListBounds(requested);
    const std::vector<std::optional<TaskStatus>> arms = ListArms(query.statuses);

    Result<TaskPage> read = Run([&](Connection& connection) -> Result<TaskPage> {
        TaskPage page;
        if (arms.size() == 1) {
            const postgres::ListStatement list = postgres::BuildListStatement(query, arms.front());
            if (Status status = AppendTaskSummaries(
                    connection.ExecuteOnce(list.statement.sql, list.params), page.items);
                !status.ok()) {
                return status;
            }
            return page;
        }
        // Every arm reads from one snapshot.
        Transaction snapshot(connection);
        if (Status status = snapshot.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
            !status.ok()) {
            return status;
        }
        for (const std::optional<TaskStatus>& arm : arms) {
            const postgres::ListStatement list = postgres::BuildListStatement(query, arm);
            if (Status status = AppendTaskSummaries(
                    connection.ExecuteOnce(list.statement.sql, list.params), page.items);
                !status.ok()) {
                return status;
            }
        }
        if (Status status = snapshot.Commit(); !status.ok()) {
            return status;
        }
        return page;
    });
    if (!read.ok()) {
        return read;
    }

    TaskPage& page = *read;
    std::sort(page.items.begin(), page.items.end(),
              [&](const Task& a, const Task& b) { return ComesBefore(a, b, query.descending); });
    const auto limit = static_cast<std::size_t>(query.limit);
    page.has_more = page.items.size() > limit;
    if (page.has_more) {
        page.items.resize(limit);
    }
    return read;
}

Result<Task> PostgresTaskStore::Cancel(std::string_view tenant, std::string_view task_id,
                                       UnixMillis now) {
    return ChangeStatus(postgres::kCancel, tenant, task_id, now, TaskStatus::kCancelled,
                        LeavesByCancel);
}

Result<Task> PostgresTaskStore::Redrive(std::string_view tenant, std::string_view task_id,
                                        UnixMillis now) {
    return ChangeStatus(postgres::kRedrive, tenant, task_id, now, std::nullopt, LeavesByRedrive);
}

// Runs a conditional UPDATE ... RETURNING. When it changes nothing, the task
// is missing (kNotFound), already in `unchanged_status` (returned as it is)
// or in a state the transition does not leave (kConflict). The update and
// the read that explains it are two statements, so a task that another
// process moved into a state that `leaves` accepts in between is updated
// again.
Result<Task> PostgresTaskStore::ChangeStatus(const Statement& statement, std::string_view tenant,
                                             std::string_view task_id, UnixMillis now,
                                             std::optional<TaskStatus> unchanged_status,
                                             bool (*leaves)(TaskStatus)) {
    if (!postgres::IsCanonicalUuid(task_id)) {
        return TaskNotFound(tenant, task_id);
    }
    return Run([&](Connection& connection) -> Result<Task> {
        std::optional<Task> current;
        for (int attempt = 0; attempt < kMaxRaceRetries; ++attempt) {
            Result<QueryResult> changed =
                connection.Execute(statement, Params().Text(task_id).Text(tenant).Int64(now));
            if (!changed.ok()) {
                return changed.status();
            }
            if (changed->rows() == 1) {
                return ReadTask(*changed, 0, 0, true);
            }

            Result<QueryResult> rows =
                connection.Execute(postgres::kSelectTask, Params().Text(task_id).Text(tenant));
            if (!rows.ok()) {
                return rows.status();
            }
            if (rows->rows() == 0) {
                return TaskNotFound(tenant, task_id);
            }
            Result<Task> task = ReadTask(*rows, 0, 0, true);
            if (!task.ok()) {
                return task.status();
            }
            if (unchanged_status && task->status == *unchanged_status) {
                return task;
            }
            current = std::move(*task);
            if (!leaves(current->status)) {
                break;
            }
        }
        return Status::Conflict("task " + std::string(task_id) + " is " +
                                std::string(ToString(current->status)));
    });
}

Result<std::vector<ClaimedTask>> PostgresTaskStore::Claim(std::string_view owner, int limit,
                                                          UnixMillis now, Millis lease) {
    if (limit < 1) {
        return std::vector<ClaimedTask>();
    }
    return Run([&](Connection& connection) -> Result<std::vector<ClaimedTask>> {
        Result<QueryResult> rows = connection.Execute(
            postgres::kClaim,
            Params().Text(owner).Int64(now + lease.count()).Int64(now).Int64(limit));
        if (!rows.ok()) {
            return rows.status();
        }
        return ReadClaimedTasks(*rows, owner);
    });
}

Result<TaskStats> PostgresTaskStore::Stats() {
    return Run([&](Connection& connection) -> Result<TaskStats> {
        if (Result<QueryResult> folded = connection.Execute(postgres::kFoldTaskCounts, Params());
            !folded.ok()) {
            return folded.status();
        }
        Result<QueryResult> rows = connection.Execute(postgres::kSelectTaskStats, Params());
        if (!rows.ok()) {
            return rows.status();
        }
        if (rows->rows() != 1) {
            return Status::Internal("the task counts query returned no row");
        }
        TaskStats stats;
        for (int column = 0; column < static_cast<int>(stats.by_status.size()); ++column) {
            stats.by_status[static_cast<std::size_t>(column)] =
                rows->OptionalInt64(0, column).value_or(0);
        }
        stats.earliest_pending_eligible_at =
            rows->OptionalInt64(0, static_cast<int>(stats.by_status.size()));
        return stats;
    });
}

Result<std::vector<std::string>> PostgresTaskStore::RenewLeases(std::string_view owner,
                                                                UnixMillis now, Millis lease) {
    return Run([&](Connection& connection) -> Result<std::vector<std::string>> {
        Transaction transaction(connection);
        if (Status status = transaction.Begin(); !status.ok()) {
            return status;
        }
        if (Result<QueryResult> locked =
                connection.Execute(postgres::kLockHeldLeases, Params().Text(owner));
            !locked.ok()) {
            return locked.status();
        }
        Result<std::vector<std::string>> renewed = ReadIds(connection.Execute(
            postgres::kRenewLeases, Params().Text(owner).Int64(now + lease.count())));
        if (!renewed.ok()) {
            return renewed;
        }
        if (Status status = transaction.Commit(); !status.ok()) {
            return status;
        }
        return renewed;
    });
}

Result<std::vector<std::string>> PostgresTaskStore::HeldLeases(std::string_view owner) {
    return Run([&](Connection& connection) {
        return ReadIds(connection.Execute(postgres::kSelectHeldLeases, Params().Text(owner)));
    });
}

namespace {

// Returns the parameters that every fenced write starts with.
Params FenceParams(const Lease& lease) {
    Params params;
    params.Text(lease.task_id).Text(lease.owner).Int64(lease.attempt);
    return params;
}

Result<FenceOutcome> ReadFenceOutcome(Result<QueryResult> rows) {
    if (!rows.ok()) {
        return rows.status();
    }
    return rows->rows() > 0 ? FenceOutcome::kApplied : FenceOutcome::kLost;
}

}  // namespace

Result<FenceOutcome> PostgresTaskStore::Complete(const Lease& lease, std::string_view result_json,
                                                 UnixMillis now) {
    if (!postgres::IsCanonicalUuid(lease.task_id)) {
        return FenceOutcome::kLost;
    }
    Params params = FenceParams(lease);
    params.Text(result_json).Int64(now);
    return Run([&](Connection& connection) {
        return ReadFenceOutcome(connection.Execute(postgres::kComplete, params));
    });
}

std::vector<Result<FenceOutcome>> PostgresTaskStore::CompleteBatch(
    std::span<const CompleteRequest> requests, UnixMillis now) {
    using Outcomes = std::vector<Result<FenceOutcome>>;
    // One statement for the batch: it locks the rows in task_id order, as
    // RenewLeases does, and the task counts change once for all of them.
    std::vector<std::string> ids;
    std::vector<std::string> owners;
    std::vector<std::int64_t> attempts;
    std::vector<std::string> results;
    for (const CompleteRequest& request : requests) {
        if (postgres::IsCanonicalUuid(request.lease->task_id)) {
            ids.push_back(request.lease->task_id);
            owners.push_back(request.lease->owner);
            attempts.push_back(request.lease->attempt);
            results.emplace_back(request.result_json);
        }
    }
    Result<Outcomes> batched = Run([&](Connection& connection) -> Result<Outcomes> {
        Outcomes outcomes(requests.size(), FenceOutcome::kLost);
        if (ids.empty()) {
            return outcomes;
        }
        Result<QueryResult> rows = connection.Execute(
            postgres::kCompleteBatch,
            Params().TextArray(ids).TextArray(owners).Int64Array(attempts).TextArray(results).Int64(
                now));
        if (!rows.ok()) {
            return rows.status();
        }
        std::unordered_set<std::string> applied;
        for (int row = 0; row < rows->rows(); ++row) {
            applied.insert(rows->Text(row, 0));
        }
        for (std::size_t i = 0; i < requests.size(); ++i) {
            if (applied.contains(requests[i].lease->task_id)) {
                outcomes[i] = FenceOutcome::kApplied;
            }
        }
        return outcomes;
    });
    if (!batched.ok()) {
        return Outcomes(requests.size(), batched.status());
    }
    return std::move(*batched);
}

int PostgresTaskStore::WriteLanes() const {
    return kWriteLanes;
}

Result<FenceOutcome> PostgresTaskStore::Fail(const Lease& lease, const TaskError& error,
                                             std::optional<UnixMillis> retry_at, UnixMillis now) {
    if (!postgres::IsCanonicalUuid(lease.task_id)) {
        return FenceOutcome::kLost;
    }
    // An exception's text can carry any bytes, and a failure that cannot be
    // stored would leave the task to the reaper.
    Params params = FenceParams(lease);
    params.Text(ToStorableText(error.code)).Text(ToStorableText(error.message));
    if (retry_at) {
        params.Int64(*retry_at);
    }
    params.Int64(now);
    const Statement& update = retry_at ? postgres::kFailRetry : postgres::kFailFinal;
    return Run([&](Connection& connection) {
        return ReadFenceOutcome(connection.Execute(update, params));
    });
}

Result<FenceOutcome> PostgresTaskStore::HandBack(const Lease& lease, UnixMillis now) {
    if (!postgres::IsCanonicalUuid(lease.task_id)) {
        return FenceOutcome::kLost;
    }
    Params params = FenceParams(lease);
    params.Int64(now);
    return Run([&](Connection& connection) {
        return ReadFenceOutcome(connection.Execute(postgres::kHandBack, params));
    });
}

Result<ReapOutcome> PostgresTaskStore::ReapExpired(
    UnixMillis now, int limit, const std::function<Millis(int attempts)>& backoff) {
    if (limit < 1) {
        return ReapOutcome{};
    }
    // The candidates are locked with SKIP LOCKED, so reapers in several
    // processes split the expired tasks between them instead of waiting on
    // each other, and no renewal or finish can land on a locked row before
    // this transaction ends.
    return Run([&](Connection& connection) -> Result<ReapOutcome> {
        Transaction transaction(connection);
        if (Status status = transaction.Begin(); !status.ok()) {
            return status;
        }
        Result<QueryResult> expired =
            connection.Execute(postgres::kSelectExpired, Params().Int64(now).Int64(limit));
        if (!expired.ok()) {
            return expired.status();
        }
        const ReapPlan plan = PlanReap(*expired, now, backoff);

        ReapOutcome outcome;
        if (!plan.requeue_ids.empty()) {
            Result<std::vector<std::string>> requeued = ReadIds(connection.Execute(
                postgres::kReapRequeue, Params()
                                            .Int64(now)
                                            .Text(kWorkerLostMessage)
                                            .TextArray(plan.requeue_ids)
                                            .TextArray(plan.requeue_owners)
                                            .Int64Array(plan.requeue_attempts)
                                            .Int64Array(plan.requeue_eligible_at)));
            if (!requeued.ok()) {
                return requeued.status();
            }
            outcome.requeued_ids = std::move(*requeued);
        }
        if (!plan.fail_ids.empty()) {
            Result<std::vector<std::string>> failed = ReadIds(
                connection.Execute(postgres::kReapFail, Params()
                                                            .Int64(now)
                                                            .Text(kWorkerLostMessage)
                                                            .TextArray(plan.fail_ids)
                                                            .TextArray(plan.fail_owners)
                                                            .Int64Array(plan.fail_attempts)));
            if (!failed.ok()) {
                return failed.status();
            }
            outcome.failed_ids = std::move(*failed);
        }
        if (Status status = transaction.Commit(); !status.ok()) {
            return status;
        }
        outcome.requeued = static_cast<int>(outcome.requeued_ids.size());
        outcome.failed = static_cast<int>(outcome.failed_ids.size());
        // The reaper runs every few seconds in every worker, so it also keeps
        // task_count_changes short for Stats(). The reap above has committed;
        // a fold that fails leaves the changes for the next one.
        (void)connection.Execute(postgres::kFoldTaskCounts, Params());
        return outcome;
    });
}

Result<int> PostgresTaskStore::PruneFinished(UnixMillis finished_before, int limit) {
    if (limit < 1) {
        return 0;
    }
    return Run([&](Connection& connection) -> Result<int> {
        Result<QueryResult> rows = connection.ExecuteOnce(
            postgres::kPrune.sql, Params().Int64(finished_before).Int64(limit));
        if (!rows.ok()) {
            return rows.status();
        }
        return static_cast<int>(rows->Int64(0, 0));
    });
}

void PostgresTaskStore::RequestSubmissionNotice() {
    {
        std::lock_guard lock(notice_mutex_);
        notice_pending_ = true;
    }
    notice_requested_.notify_one();
}

void PostgresTaskStore::RunSubmissionNotifier() {
    // Creates that commit within one window share one notification. A lost
    // notification only delays a worker until its next fallback poll.
    constexpr auto kWindow = std::chrono::milliseconds(2);
    std::unique_lock lock(notice_mutex_);
    while (true) {
        notice_requested_.wait(lock, [this] { return notice_pending_ || notifier_stopping_; });
        if (notifier_stopping_) {
            return;
        }
        lock.unlock();
        std::this_thread::sleep_for(kWindow);
        lock.lock();
        notice_pending_ = false;
        lock.unlock();
        const Result<bool> sent = Run([](Connection& connection) -> Result<bool> {
            Result<QueryResult> notified =
                connection.Execute(postgres::kNotifySubmissions, Params());
            if (!notified.ok()) {
                return notified.status();
            }
            return true;
        });
        static_cast<void>(sent);
        lock.lock();
    }
}

}  // namespace conveyor
