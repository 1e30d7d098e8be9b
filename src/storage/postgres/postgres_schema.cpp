#include "storage/postgres/postgres_schema.hpp"

#include <array>
#include <cstddef>
#include <iterator>
#include <set>
#include <span>
#include <string>

#include "core/ids.hpp"

namespace conveyor::postgres {
namespace {

struct Migration {
    int version;
    const char* description;
    const char* sql;
};

// Numbered schema steps. A released step is never edited: a change to the
// schema is a new step at the end.
//
// Choices that hold for the whole schema:
// - task_id is uuid, not text: every id is a UUID the service generates, and
//   16 bytes instead of 37 keep the primary key and the four other indexes
//   that end in task_id smaller. uuid compares as its 16 bytes, which is the
//   order of the lower-case text form, so pages come out in the same order
//   as from the SQLite store.
// - Timestamps are bigint milliseconds since the Unix epoch, as everywhere
//   in the service, so no time zone or rounding applies.
// - Keys compared for equality or order (tenant, type, status, lease owner,
//   idempotency key) use COLLATE "C": byte comparison, the same as SQLite's
//   BINARY, and cheaper in indexes than a linguistic collation.
// - The submitted text is bytea in its own table: text columns cannot hold
//   U+0000 or invalid UTF-8, and the hot tasks rows stay small.
// - Status values are literals in every query, because the planner uses a
//   partial index (WHERE status = 'PENDING') only when it can prove the
//   query implies the index predicate.
constexpr Migration kMigrations[] = {
    {1, "tasks, texts, idempotency keys and meta", R"sql(
-- Columns run from fixed 8-byte ones to variable-length ones, so that
-- alignment wastes no padding.
--
-- Storage parameters, for a table where every row is inserted once, updated
-- three or more times (claim, lease renewals, finish) and deleted by pruning:
-- - fillfactor 90: status changes and renewals modify indexed columns
--   (status is in tasks_tenant_status_created and in the partial index
--   predicates, lease_expires_at in tasks_lease_expiry), so they cannot be
--   HOT updates. The free tenth of each page still lets the new row version
--   land on the same page, so an update dirties one heap page, and page
--   pruning can reclaim the old version's space before a vacuum comes.
-- - autovacuum_vacuum_scale_factor 0.01 with threshold 1000: the default
--   (20 % of the table) would let a large table gather millions of dead
--   versions first. Claims read tasks_claim from its oldest entry, where
--   the entries of rows claimed moments ago pile up until a vacuum removes
--   them, so vacuuming after about 1 % of churn keeps that head short.
-- - autovacuum_analyze_scale_factor 0.02: the share of rows in each status
--   shifts quickly, and the planner's choice between the list indexes
--   depends on it.
CREATE TABLE tasks (
    task_id uuid PRIMARY KEY,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    eligible_at bigint NOT NULL,
    text_bytes bigint NOT NULL,
    started_at bigint,
    finished_at bigint,
    next_attempt_at bigint,
    lease_expires_at bigint,
    attempts integer NOT NULL,
    max_attempts integer NOT NULL,
    tenant text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL
        CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    lease_owner text COLLATE "C",
    params_json text NOT NULL,
    metadata_json text,
    error_code text,
    error_message text,
    result_json text
) WITH (
    fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02
);

-- Claims: the eligible PENDING tasks, oldest first.
CREATE INDEX tasks_claim ON tasks (eligible_at, task_id) WHERE status = 'PENDING';
-- The reaper: PROCESSING tasks by lease expiry.
CREATE INDEX tasks_lease_expiry ON tasks (lease_expires_at) WHERE status = 'PROCESSING';
-- Lease renewal and the held-lease check of one worker. The trailing
-- task_id makes a fenced write (task_id, owner, attempt) a single-entry
-- lookup here too: the planner often prefers this small partial index to
-- the primary key, and without task_id it would walk all of the owner's
-- leases, up to a worker's whole --concurrency.
CREATE INDEX tasks_lease_owner ON tasks (lease_owner, task_id) WHERE status = 'PROCESSING';
-- List pages: each ends in (created_at, task_id), so a keyset page is one
-- index range read in either direction, at any depth.
CREATE INDEX tasks_tenant_created ON tasks (tenant, created_at, task_id);
CREATE INDEX tasks_tenant_status_created ON tasks (tenant, status, created_at, task_id);
CREATE INDEX tasks_tenant_type_created ON tasks (tenant, type, created_at, task_id);
-- Pruning: terminal tasks from the oldest finish.
CREATE INDEX tasks_finished ON tasks (finished_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');

-- Written once and never updated, so the default fillfactor of 100 fits.
-- Texts over about 2 kB go to TOAST storage, compressed.
CREATE TABLE task_texts (
    task_id uuid PRIMARY KEY REFERENCES tasks (task_id),
    text bytea NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL,
    request_hash text NOT NULL,
    task_id uuid NOT NULL REFERENCES tasks (task_id),
    created_at bigint NOT NULL,
    PRIMARY KEY (tenant, idempotency_key)
);
-- Pruning deletes a task's keys with it, and the foreign key check on a
-- task's deletion looks its keys up.
CREATE INDEX idempotency_keys_task ON idempotency_keys (task_id);

CREATE TABLE meta (
    name text PRIMARY KEY,
    value bytea NOT NULL
);
)sql"},
    {2, "lease expiry and finish indexes keyed on their own columns", R"sql(
-- A partial index on status = 'PROCESSING' qualifies for every write to one
-- task that tests the status, such as a fenced completion. With statistics
-- from before a burst of claims, the planner took such an index for nearly
-- empty and filtered all of a worker's leases for each completion (250
-- completions a second instead of 25,000 with 100,000 leases). A predicate
-- on the indexed column covers the same rows, because a lease expiry is set
-- only while PROCESSING and a finish time only in a final state, and only
-- the reaper and pruning, which compare that column, imply it.
DROP INDEX tasks_lease_expiry;
CREATE INDEX tasks_lease_expiry ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
DROP INDEX tasks_finished;
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
)sql"},
    {3, "traceparent column and task counts by state", R"sql(
ALTER TABLE tasks ADD COLUMN traceparent text;

-- The number of tasks in each state, so that /metrics never counts the
-- tasks table: the sum of each column over all rows. A single row would
-- serialise every writer on its lock, so there are 64 rows, and a
-- transaction adds its changes to the row that its transaction id picks.
-- The triggers are deferred to commit: a transaction then locks one row of
-- task_counts, after every other lock it takes, so two writers can wait for
-- each other here only briefly and never deadlock.
CREATE TABLE task_counts (
    slot integer PRIMARY KEY,
    pending bigint NOT NULL DEFAULT 0,
    processing bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    cancelled bigint NOT NULL DEFAULT 0
);
INSERT INTO task_counts (slot) SELECT generate_series(0, 63);

CREATE FUNCTION conveyor_count_task_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_status text := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END;
    new_status text := CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.status END;
BEGIN
    UPDATE task_counts SET
        pending = pending + (new_status IS NOT DISTINCT FROM 'PENDING')::int
            - (old_status IS NOT DISTINCT FROM 'PENDING')::int,
        processing = processing + (new_status IS NOT DISTINCT FROM 'PROCESSING')::int
            - (old_status IS NOT DISTINCT FROM 'PROCESSING')::int,
        completed = completed + (new_status IS NOT DISTINCT FROM 'COMPLETED')::int
            - (old_status IS NOT DISTINCT FROM 'COMPLETED')::int,
        failed = failed + (new_status IS NOT DISTINCT FROM 'FAILED')::int
            - (old_status IS NOT DISTINCT FROM 'FAILED')::int,
        cancelled = cancelled + (new_status IS NOT DISTINCT FROM 'CANCELLED')::int
            - (old_status IS NOT DISTINCT FROM 'CANCELLED')::int
    WHERE slot = (txid_current() % 64)::integer;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER tasks_count_insert AFTER INSERT ON tasks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION conveyor_count_task_change();
CREATE CONSTRAINT TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION conveyor_count_task_change();
CREATE CONSTRAINT TRIGGER tasks_count_delete AFTER DELETE ON tasks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION conveyor_count_task_change();

-- CREATE TRIGGER locks tasks against writes until this transaction
-- commits, so the one count below misses no change and counts none twice.
UPDATE task_counts SET
    pending = counted.pending, processing = counted.processing,
    completed = counted.completed, failed = counted.failed, cancelled = counted.cancelled
FROM (SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
             count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
             count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
             count(*) FILTER (WHERE status = 'FAILED') AS failed,
             count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled
      FROM tasks) AS counted
WHERE slot = 0;
)sql"},
    {4, "task counts from appended changes", R"sql(
-- Step 3 updated one task_counts row for each changed task. Every update of
-- a row that the same transaction has already updated follows the chain of
-- that row's versions, so a transaction that changed n tasks paid for n^2/2
-- versions: a claim of 1,000 tasks read half a million, and a bulk insert
-- of 250,000 tasks took ten minutes. Now each insert or delete statement,
-- and each change of a task's state, appends one row of per-state changes
-- to task_count_changes. Appends lock nothing that another writer needs, so
-- they can neither wait nor deadlock.
-- The store folds the appended rows into task_counts (slot 0) from time to
-- time, so a count reads task_counts and the changes since the last fold.
DROP TRIGGER tasks_count_insert ON tasks;
DROP TRIGGER tasks_count_update ON tasks;
DROP TRIGGER tasks_count_delete ON tasks;
DROP FUNCTION conveyor_count_task_change();

CREATE TABLE task_count_changes (
    pending bigint NOT NULL,
    processing bigint NOT NULL,
    completed bigint NOT NULL,
    failed bigint NOT NULL,
    cancelled bigint NOT NULL
);

-- An insert or a delete is counted once per statement: a statement-level
-- trigger sees the rows it inserted or deleted as a transition table. A
-- change of state is counted per row, by a row trigger that fires only when
-- the status changes, so a statement that touches many rows without moving
-- any between states, such as a lease renewal, costs nothing here.
CREATE FUNCTION conveyor_count_task_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_count_changes
        SELECT count(*) FILTER (WHERE status = 'PENDING'),
               count(*) FILTER (WHERE status = 'PROCESSING'),
               count(*) FILTER (WHERE status = 'COMPLETED'),
               count(*) FILTER (WHERE status = 'FAILED'),
               count(*) FILTER (WHERE status = 'CANCELLED')
        FROM new_rows HAVING count(*) > 0;
    ELSE
        INSERT INTO task_count_changes
        SELECT -count(*) FILTER (WHERE status = 'PENDING'),
               -count(*) FILTER (WHERE status = 'PROCESSING'),
               -count(*) FILTER (WHERE status = 'COMPLETED'),
               -count(*) FILTER (WHERE status = 'FAILED'),
               -count(*) FILTER (WHERE status = 'CANCELLED')
        FROM old_rows HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION conveyor_count_task_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_count_changes VALUES (
        (NEW.status = 'PENDING')::int - (OLD.status = 'PENDING')::int,
        (NEW.status = 'PROCESSING')::int - (OLD.status = 'PROCESSING')::int,
        (NEW.status = 'COMPLETED')::int - (OLD.status = 'COMPLETED')::int,
        (NEW.status = 'FAILED')::int - (OLD.status = 'FAILED')::int,
        (NEW.status = 'CANCELLED')::int - (OLD.status = 'CANCELLED')::int);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION conveyor_count_task_rows();
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION conveyor_count_task_move();
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION conveyor_count_task_rows();
)sql"},
    {5, "task state changes counted per statement", R"sql(
-- Step 4 counted each change of state with a row trigger: one more insert,
-- and one more trigger call, for every claimed and every completed task.
-- A drain of 100,000 tasks paid for 200,000 of them. Now an update is
-- counted once per statement, from its transition tables, as inserts and
-- deletes are, and workers claim and complete tasks in batches of one
-- statement each. An update that moves no task between states, such as a
-- lease renewal, appends nothing.
DROP TRIGGER tasks_count_update ON tasks;
DROP FUNCTION conveyor_count_task_move();

CREATE FUNCTION conveyor_count_task_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_count_changes
    SELECT sum(pending), sum(processing), sum(completed), sum(failed), sum(cancelled)
    FROM (SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
                 count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
                 count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
                 count(*) FILTER (WHERE status = 'FAILED') AS failed,
                 count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled
          FROM new_rows
          UNION ALL
          SELECT -count(*) FILTER (WHERE status = 'PENDING'),
                 -count(*) FILTER (WHERE status = 'PROCESSING'),
                 -count(*) FILTER (WHERE status = 'COMPLETED'),
                 -count(*) FILTER (WHERE status = 'FAILED'),
                 -count(*) FILTER (WHERE status = 'CANCELLED')
          FROM old_rows) AS moves
    HAVING sum(pending) <> 0 OR sum(processing) <> 0 OR sum(completed) <> 0
        OR sum(failed) <> 0 OR sum(cancelled) <> 0;
    RETURN NULL;
END;
$$;

-- Transition tables cannot go with a column list, so this fires on every
-- update of tasks, and the sums above leave out those that move nothing.
CREATE TRIGGER tasks_count_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION conveyor_count_task_moves();
)sql"},
};

// A fixed key for pg_advisory_xact_lock: the bytes of "conveyor" as a
// bigint. Any process that migrates this database takes the same lock.
constexpr std::int64_t kMigrationLockKey = 7165066986957401970;

// Takes the migration lock inside the caller's transaction, creates
// schema_migrations when it is missing, and returns the versions applied.
// Each statement after the lock sees what a process that held it before
// committed.
Result<std::set<int>> LockAndReadVersions(Connection& connection) {
    Result<QueryResult> locked = connection.ExecuteOnce("SELECT pg_advisory_xact_lock($1)",
                                                        Params().Int64(kMigrationLockKey));
    if (!locked.ok()) {
        return locked.status();
    }
    Result<QueryResult> created = connection.ExecuteScript(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " description text NOT NULL,"
        " applied_at bigint NOT NULL)");
    if (!created.ok()) {
        return created.status();
    }

    Result<QueryResult> rows = connection.ExecuteOnce("SELECT version FROM schema_migrations");
    if (!rows.ok()) {
        return rows.status();
    }
    std::set<int> versions;
    for (int row = 0; row < rows->rows(); ++row) {
        versions.insert(static_cast<int>(rows->Int64(row, 0)));
    }
    return versions;
}

Status ApplyMigration(Connection& connection, const Migration& migration, UnixMillis now) {
    Result<QueryResult> applied = connection.ExecuteScript(migration.sql);
    if (!applied.ok()) {
        const Status& status = applied.status();
        std::string message = "migration " + std::to_string(migration.version) + " (" +
                              migration.description + ") failed: " + status.message();
        return status.code() == StatusCode::kUnavailable ? Status::Unavailable(std::move(message))
                                                         : Status::Internal(std::move(message));
    }
    Result<QueryResult> recorded = connection.ExecuteOnce(
        "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
        Params().Int64(migration.version).Text(migration.description).Int64(now));
    return recorded.ok() ? Status::Ok() : recorded.status();
}

// ON CONFLICT DO NOTHING keeps the first key written, so every process
// reads the same one.
Status EnsureCursorKey(Connection& connection) {
    std::array<std::byte, kCursorKeyBytes> key{};
    FillSecureRandom(key);
    const std::string_view bytes(reinterpret_cast<const char*>(key.data()), key.size());
    Result<QueryResult> inserted = connection.ExecuteOnce(
        "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        Params().Text(kCursorKeyName).Bytes(bytes));
    return inserted.ok() ? Status::Ok() : inserted.status();
}

}  // namespace

int LatestSchemaVersion() {
    return kMigrations[std::size(kMigrations) - 1].version;
}

Status ApplyMigrations(Connection& connection, UnixMillis now) {
    // NOTE: every step runs inside this one transaction, so a future step
    // cannot use statements that refuse to run in a transaction block, such
    // as CREATE INDEX CONCURRENTLY.
    Transaction transaction(connection);
    if (Status status = transaction.Begin(); !status.ok()) {
        return status;
    }
    Result<std::set<int>> applied = LockAndReadVersions(connection);
    if (!applied.ok()) {
        return applied.status();
    }

    for (const Migration& migration : kMigrations) {
        if (applied->contains(migration.version)) {
            continue;
        }
        if (Status status = ApplyMigration(connection, migration, now); !status.ok()) {
            return status;
        }
    }
    if (Status status = EnsureCursorKey(connection); !status.ok()) {
        return status;
    }
    return transaction.Commit();
}

}  // namespace conveyor::postgres
