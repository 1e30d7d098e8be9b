#include "storage/sqlite/sqlite_schema.hpp"

#include <iterator>
#include <string>
#include <utility>

#include "core/ids.hpp"

namespace conveyor::sqlite {
namespace {

struct Migration {
    int version;
    const char* description;
    const char* sql;
};

// Numbered schema steps. A released step is never edited: a change to the
// schema is a new step at the end.
//
// The hot `tasks` row stays small: the submitted text lives in task_texts.
// `eligible_at` is the claim order and is never NULL, while `next_attempt_at`
// is the API field, set only while a task waits out a retry back-off. Partial
// indexes keep claims, the reaper and lease lookups to the few rows in their
// state, and the three list indexes end in (created_at, task_id) so that
// keyset pages are index range scans.
constexpr Migration kMigrations[] = {
    {1, "tasks, texts, idempotency keys and meta", R"sql(
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    params_json TEXT NOT NULL,
    metadata_json TEXT,
    text_bytes INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    next_attempt_at INTEGER,
    eligible_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires_at INTEGER,
    error_code TEXT,
    error_message TEXT,
    result_json TEXT
) STRICT;

CREATE UNIQUE INDEX tasks_task_id ON tasks (task_id);
CREATE INDEX tasks_claim ON tasks (eligible_at, task_id) WHERE status = 'PENDING';
CREATE INDEX tasks_lease_expiry ON tasks (lease_expires_at) WHERE status = 'PROCESSING';
CREATE INDEX tasks_lease_owner ON tasks (lease_owner) WHERE status = 'PROCESSING';
CREATE INDEX tasks_tenant_created ON tasks (tenant, created_at, task_id);
CREATE INDEX tasks_tenant_status_created ON tasks (tenant, status, created_at, task_id);
CREATE INDEX tasks_tenant_type_created ON tasks (tenant, type, created_at, task_id);

CREATE TABLE task_texts (
    task_rowid INTEGER PRIMARY KEY REFERENCES tasks (id),
    text BLOB NOT NULL
) STRICT;

CREATE TABLE idempotency_keys (
    tenant TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    task_id TEXT NOT NULL REFERENCES tasks (task_id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, idempotency_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
)sql"},
    // Pruning walks terminal tasks from the oldest finish; the idempotency
    // key index by task lets a pruned task's keys go in the same batch.
    {2, "indexes for pruning finished tasks", R"sql(
CREATE INDEX tasks_finished ON tasks (finished_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
CREATE INDEX idempotency_keys_task ON idempotency_keys (task_id);
)sql"},
    // task_counts stores the number of tasks in each state, so /metrics
    // never counts the tasks table. Triggers keep it in step inside the
    // transaction that changes a task, whatever statement does it. SQLite
    // has one writer at a time, so one row per state costs no contention.
    // The one-time count below is the only scan.
    {3, "traceparent column and task counts by state", R"sql(
ALTER TABLE tasks ADD COLUMN traceparent TEXT;

CREATE TABLE task_counts (
    status TEXT PRIMARY KEY,
    count INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO task_counts (status, count)
SELECT states.status, (SELECT count(*) FROM tasks WHERE tasks.status = states.status)
FROM (SELECT 'PENDING' AS status UNION ALL SELECT 'PROCESSING' UNION ALL SELECT 'COMPLETED'
      UNION ALL SELECT 'FAILED' UNION ALL SELECT 'CANCELLED') AS states;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks
BEGIN
    UPDATE task_counts SET count = count + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE task_counts SET count = count - 1 WHERE status = OLD.status;
    UPDATE task_counts SET count = count + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks
BEGIN
    UPDATE task_counts SET count = count - 1 WHERE status = OLD.status;
END;
)sql"},
};

Status CreateMigrationsTable(Connection& connection) {
    Transaction transaction(connection);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        return status;
    }
    if (Status status = connection.Execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                                           " version INTEGER PRIMARY KEY,"
                                           " description TEXT NOT NULL,"
                                           " applied_at INTEGER NOT NULL"
                                           ") STRICT");
        !status.ok()) {
        return status;
    }
    return transaction.Commit();
}

Result<bool> IsApplied(Connection& connection, int version) {
    Result<StatementHandle> select =
        connection.Prepare("SELECT 1 FROM schema_migrations WHERE version = ?1");
    if (!select.ok()) {
        return select.status();
    }
    (*select)->BindInt64(1, version);
    return (*select)->Step();
}

Status ApplyMigration(Connection& connection, const Migration& migration, UnixMillis now) {
    // The write lock is taken before the check, so a second process waits
    // here and then finds the step applied.
    Transaction transaction(connection);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        return status;
    }
    Result<bool> applied = IsApplied(connection, migration.version);
    if (!applied.ok()) {
        return applied.status();
    }
    if (*applied) {
        return Status::Ok();
    }

    if (Status status = connection.Execute(migration.sql); !status.ok()) {
        std::string message = "migration " + std::to_string(migration.version) + " (" +
                              migration.description + ") failed: " + status.message();
        return status.code() == StatusCode::kUnavailable ? Status::Unavailable(std::move(message))
                                                         : Status::Internal(std::move(message));
    }
    Result<StatementHandle> record = connection.Prepare(
        "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)");
    if (!record.ok()) {
        return record.status();
    }
    (*record)->BindInt64(1, migration.version);
    (*record)->BindText(2, migration.description);
    (*record)->BindInt64(3, now);
    if (Status status = (*record)->Run(); !status.ok()) {
        return status;
    }
    return transaction.Commit();
}

// INSERT OR IGNORE keeps the first key written, so processes that migrate
// at the same moment all end up reading the same one.
Status EnsureCursorKey(Connection& connection) {
    Result<StatementHandle> insert =
        connection.Prepare("INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)");
    if (!insert.ok()) {
        return insert.status();
    }
    (*insert)->BindText(1, kCursorKeyName);
    (*insert)->BindText(2, RandomHex(kCursorKeyBytes));

    Transaction transaction(connection);
    if (Status status = transaction.Begin(Transaction::Mode::kImmediate); !status.ok()) {
        return status;
    }
    if (Status status = (*insert)->Run(); !status.ok()) {
        return status;
    }
    return transaction.Commit();
}

}  // namespace

int LatestSchemaVersion() {
    return kMigrations[std::size(kMigrations) - 1].version;
}

Status ApplyMigrations(Connection& connection, UnixMillis now) {
    if (Status status = CreateMigrationsTable(connection); !status.ok()) {
        return status;
    }
    for (const Migration& migration : kMigrations) {
        if (Status status = ApplyMigration(connection, migration, now); !status.ok()) {
            return status;
        }
    }
    return EnsureCursorKey(connection);
}

}  // namespace conveyor::sqlite
