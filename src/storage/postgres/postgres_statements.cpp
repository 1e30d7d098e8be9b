#include "storage/postgres/postgres_statements.hpp"

#include <array>
#include <string_view>

#include "core/ids.hpp"

namespace conveyor::postgres {
namespace {

constexpr std::array<std::string_view, kTaskSummaryColumnCount + 1> kTaskColumnNames = {
    "task_id",       "tenant",      "type",        "status",          "params_json",
    "metadata_json", "text_bytes",  "attempts",    "max_attempts",    "created_at",
    "updated_at",    "started_at",  "finished_at", "next_attempt_at", "error_code",
    "error_message", "result_json",
};

// Returns the task columns, each qualified with `table` when it is not empty.
std::string TaskColumns(std::string_view table, bool with_result = true) {
    std::string columns;
    const std::size_t count = with_result ? kTaskColumnNames.size() : kTaskSummaryColumnCount;
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) {
            columns += ", ";
        }
        if (!table.empty()) {
            columns += table;
            columns += '.';
        }
        columns += kTaskColumnNames[i];
    }
    return columns;
}

std::string Notify(std::string_view payload_sql) {
    return "pg_notify('" + std::string(kChangeChannel) + "', " + std::string(payload_sql) + ")";
}

const std::string kNotifySubmitted = Notify("'s'");
const std::string kNotifyFinished = Notify("'f:' || task_id::text");
const std::string kNotifyCancelled = Notify("'c:' || task_id::text");

const std::string kFence =
    " WHERE task_id = $1 AND status = 'PROCESSING' AND lease_owner = $2 AND attempts = $3";

const std::string kClearLease = "lease_owner = NULL, lease_expires_at = NULL";

// Runs `update`, which must end in RETURNING task_id, and returns one row
// per changed task with `notify` called for it.
std::string NotifyAfter(const std::string& update, const std::string& notify) {
    return "WITH changed AS (" + update + ") SELECT task_id, " + notify + " FROM changed";
}

}  // namespace

const Statement kInsertTask{
    "conveyor_insert_task",
    "WITH task AS ("
    " INSERT INTO tasks (task_id, tenant, type, status, params_json, metadata_json, text_bytes,"
    " attempts, max_attempts, created_at, updated_at, eligible_at, traceparent)"
    " VALUES ($1, $2, $3, 'PENDING', $4, $5, $6, 0, $7, $8, $8, $8, $10) RETURNING task_id),"
    " stored_text AS (INSERT INTO task_texts (task_id, text) SELECT task_id, $9::bytea FROM task"
    " RETURNING task_id)"
    " SELECT task_id FROM stored_text"};

// The key goes in first: of several statements with the same key, in any
// process, the first insert wins, and the others wait for its transaction
// and then insert nothing, so no task or text is written for a replay.
const Statement kInsertTaskWithKey{
    "conveyor_insert_task_with_key",
    "WITH key AS ("
    " INSERT INTO idempotency_keys (tenant, idempotency_key, request_hash, task_id, created_at)"
    " VALUES ($2, $10, $11, $1, $8) ON CONFLICT DO NOTHING RETURNING task_id),"
    " task AS ("
    " INSERT INTO tasks (task_id, tenant, type, status, params_json, metadata_json, text_bytes,"
    " attempts, max_attempts, created_at, updated_at, eligible_at, traceparent)"
    " SELECT task_id, $2::text, $3::text, 'PENDING', $4::text, $5::text, $6::bigint, 0,"
    " $7::integer, $8::bigint, $8::bigint, $8::bigint, $12::text FROM key RETURNING task_id),"
    " stored_text AS (INSERT INTO task_texts (task_id, text) SELECT task_id, $9::bytea FROM task"
    " RETURNING task_id)"
    " SELECT task_id FROM stored_text"};

// Sent after submissions commit, at most once per debounce window, instead of
// once per task inside each insert: a burst of submissions then costs a few
// notifications, and inserts never wait on the cluster-wide lock that a
// notifying transaction holds through its commit.
const Statement kNotifySubmissions{"conveyor_notify_submissions", "SELECT " + kNotifySubmitted};

const Statement kSelectKey{"conveyor_select_key",
                           "SELECT k.request_hash, " + TaskColumns("t") +
                               " FROM idempotency_keys k LEFT JOIN tasks t ON t.task_id = k.task_id"
                               " WHERE k.tenant = $1 AND k.idempotency_key = $2"};

const Statement kSelectTask{
    "conveyor_select_task",
    "SELECT " + TaskColumns("") + " FROM tasks WHERE task_id = $1 AND tenant = $2"};

const Statement kSelectTaskWithText{
    "conveyor_select_task_with_text",
    "SELECT " + TaskColumns("t") +
        ", x.text FROM tasks t LEFT JOIN task_texts x ON x.task_id = t.task_id"
        " WHERE t.task_id = $1 AND t.tenant = $2"};

const Statement kSelectStatuses{
    "conveyor_select_statuses",
    "SELECT task_id, status FROM tasks WHERE task_id = ANY ($1::uuid[])"};

const Statement kCountPending{
    "conveyor_count_pending",
    "SELECT count(*) FROM (SELECT 1 FROM tasks WHERE tenant = $1 AND status = 'PENDING'"
    " LIMIT $2) AS pending"};

const Statement kCancel{
    "conveyor_cancel",
    "WITH changed AS ("
    " UPDATE tasks SET status = 'CANCELLED', finished_at = $3, updated_at = $3,"
    " next_attempt_at = NULL, " +
        kClearLease +
        " WHERE task_id = $1 AND tenant = $2 AND status IN ('PENDING', 'PROCESSING')"
        " RETURNING " +
        TaskColumns("") + ") SELECT " + TaskColumns("") + ", " + kNotifyCancelled + ", " +
        kNotifyFinished + " FROM changed"};

const Statement kRedrive{
    "conveyor_redrive",
    "WITH changed AS ("
    " UPDATE tasks SET status = 'PENDING', attempts = 0, error_code = NULL,"
    " error_message = NULL, result_json = NULL, finished_at = NULL, next_attempt_at = NULL,"
    " eligible_at = $3, updated_at = $3, " +
        kClearLease +
        " WHERE task_id = $1 AND tenant = $2 AND status IN ('FAILED', 'CANCELLED')"
        " RETURNING " +
        TaskColumns("") + ") SELECT " + TaskColumns("") + ", " + kNotifySubmitted +
        " FROM changed"};

// One statement picks, leases and reads the tasks. The picking query is a
// MATERIALIZED CTE, which PostgreSQL evaluates once. As a subquery inside
// `task_id IN (...)`, a plan that rescanned it would lock and lease more
// than `limit` rows. FOR UPDATE SKIP LOCKED lets claimers in every process pick
// disjoint rows without waiting for each other, and it re-checks
// status = 'PENDING' on the newest row version, so a row that another
// claimer leased after this statement's snapshot is skipped.
const Statement kClaim{
    "conveyor_claim",
    "WITH picked AS MATERIALIZED ("
    " SELECT task_id FROM tasks WHERE status = 'PENDING' AND eligible_at <= $3"
    " ORDER BY eligible_at, task_id LIMIT $4 FOR UPDATE SKIP LOCKED),"
    " claimed AS ("
    " UPDATE tasks SET status = 'PROCESSING', attempts = attempts + 1, lease_owner = $1,"
    " lease_expires_at = $2, started_at = $3, updated_at = $3, next_attempt_at = NULL"
    " FROM picked WHERE tasks.task_id = picked.task_id AND tasks.status = 'PENDING'"
    " RETURNING tasks.eligible_at, tasks.traceparent, " +
        TaskColumns("tasks") + ") SELECT " + TaskColumns("c") +
        ", x.text, c.traceparent FROM claimed c LEFT JOIN task_texts x ON x.task_id = c.task_id"
        " ORDER BY c.eligible_at, c.task_id"};

// Sums task_counts and the changes appended since the last fold, and reads
// the first entry of tasks_claim, the index that claims read. One statement
// reads one snapshot, so a fold that commits meanwhile is counted once.
const Statement kSelectTaskStats{
    "conveyor_select_task_stats",
    "SELECT sum(pending)::bigint, sum(processing)::bigint, sum(completed)::bigint,"
    " sum(failed)::bigint, sum(cancelled)::bigint,"
    " (SELECT eligible_at FROM tasks WHERE status = 'PENDING'"
    " ORDER BY eligible_at, task_id LIMIT 1)"
    " FROM (SELECT pending, processing, completed, failed, cancelled FROM task_counts"
    " UNION ALL SELECT pending, processing, completed, failed, cancelled"
    " FROM task_count_changes) AS counts"};

// Moves the appended changes into slot 0 of task_counts in one statement.
// Two folds at once take disjoint rows: the second skips the rows the first
// deleted, and its update of slot 0 waits for the first's and adds to it.
const Statement kFoldTaskCounts{
    "conveyor_fold_task_counts",
    "WITH moved AS (DELETE FROM task_count_changes"
    " RETURNING pending, processing, completed, failed, cancelled)"
    " UPDATE task_counts SET pending = task_counts.pending + m.pending,"
    " processing = task_counts.processing + m.processing,"
    " completed = task_counts.completed + m.completed,"
    " failed = task_counts.failed + m.failed, cancelled = task_counts.cancelled + m.cancelled"
    " FROM (SELECT coalesce(sum(pending), 0) AS pending,"
    " coalesce(sum(processing), 0) AS processing, coalesce(sum(completed), 0) AS completed,"
    " coalesce(sum(failed), 0) AS failed, coalesce(sum(cancelled), 0) AS cancelled"
    " FROM moved HAVING count(*) > 0) AS m"
    " WHERE task_counts.slot = 0"};

// A renewal is bookkeeping, not a change a client can see, so it leaves
// updated_at alone. It is two statements in one transaction. The first locks
// the rows in task_id order, as a batch of completions does, so the two
// cannot deadlock. Written as one UPDATE ... IN (SELECT ... FOR UPDATE), it
// let the planner rerun the locking subquery for each row, which took
// minutes for 100,000 leases.
const Statement kLockHeldLeases{
    "conveyor_lock_held_leases",
    "SELECT count(*) FROM (SELECT task_id FROM tasks"
    " WHERE status = 'PROCESSING' AND lease_owner = $1 ORDER BY task_id FOR UPDATE) AS held"};

const Statement kRenewLeases{"conveyor_renew_leases",
                             "UPDATE tasks SET lease_expires_at = $2"
                             " WHERE status = 'PROCESSING' AND lease_owner = $1 RETURNING task_id"};

const Statement kSelectHeldLeases{
    "conveyor_select_held_leases",
    "SELECT task_id FROM tasks WHERE status = 'PROCESSING' AND lease_owner = $1"};

const Statement kComplete{
    "conveyor_complete",
    NotifyAfter("UPDATE tasks SET status = 'COMPLETED', result_json = $4, finished_at = $5,"
                " updated_at = $5, error_code = NULL, error_message = NULL, " +
                    kClearLease + kFence + " RETURNING task_id",
                kNotifyFinished)};

// One statement completes a whole batch, so the statement-level trigger that
// counts changes of state runs once for it. The rows are locked first, in
// task_id order as RenewLeases locks them, so the two cannot deadlock. The
// `= ANY($1)` keeps the update on the primary key rather than on all the
// owner's leases.
const Statement kCompleteBatch{
    "conveyor_complete_batch",
    "WITH input AS ("
    " SELECT * FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::text[])"
    " AS r (task_id, owner, attempts, result_json)),"
    " locked AS MATERIALIZED ("
    " SELECT task_id FROM tasks WHERE task_id = ANY($1::uuid[]) ORDER BY task_id FOR UPDATE),"
    " changed AS ("
    " UPDATE tasks SET status = 'COMPLETED', result_json = input.result_json, finished_at = $5,"
    " updated_at = $5, error_code = NULL, error_message = NULL, " +
        kClearLease +
        " FROM input JOIN locked ON locked.task_id = input.task_id"
        " WHERE tasks.task_id = input.task_id AND tasks.task_id = ANY($1::uuid[])"
        " AND tasks.status = 'PROCESSING' AND tasks.lease_owner = input.owner"
        " AND tasks.attempts = input.attempts RETURNING tasks.task_id)"
        " SELECT task_id, " +
        kNotifyFinished + " FROM changed"};

const Statement kFailRetry{
    "conveyor_fail_retry",
    NotifyAfter("UPDATE tasks SET status = 'PENDING', error_code = $4, error_message = $5,"
                " eligible_at = $6, next_attempt_at = $6, updated_at = $7, " +
                    kClearLease + kFence + " RETURNING task_id",
                kNotifySubmitted)};

const Statement kFailFinal{
    "conveyor_fail_final",
    NotifyAfter("UPDATE tasks SET status = 'FAILED', error_code = $4, error_message = $5,"
                " finished_at = $6, updated_at = $6, " +
                    kClearLease + kFence + " RETURNING task_id",
                kNotifyFinished)};

// The hand-back makes the task eligible at once, so idle workers hear of it.
const Statement kHandBack{
    "conveyor_hand_back",
    NotifyAfter("UPDATE tasks SET status = 'PENDING', attempts = attempts - 1,"
                " eligible_at = $4, next_attempt_at = NULL, updated_at = $4, " +
                    kClearLease + kFence + " RETURNING task_id",
                kNotifySubmitted)};

const Statement kSelectExpired{"conveyor_select_expired",
                               "SELECT task_id, lease_owner, attempts, max_attempts FROM tasks"
                               " WHERE status = 'PROCESSING' AND lease_expires_at < $1"
                               " ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED"};

// The reaper's writes re-check that each lease is still the one it saw and
// still expired. Its transaction holds the row locks, so they always match
// today, but the check keeps the writes safe on their own.
const Statement kReapRequeue{
    "conveyor_reap_requeue",
    NotifyAfter("UPDATE tasks SET status = 'PENDING', error_code = 'worker_lost',"
                " error_message = $2, eligible_at = r.eligible_at,"
                " next_attempt_at = r.eligible_at, updated_at = $1, " +
                    kClearLease +
                    " FROM unnest($3::uuid[], $4::text[], $5::integer[], $6::bigint[])"
                    " AS r (task_id, owner, attempts, eligible_at)"
                    " WHERE tasks.task_id = r.task_id AND tasks.status = 'PROCESSING'"
                    " AND tasks.lease_owner = r.owner AND tasks.attempts = r.attempts"
                    " AND tasks.lease_expires_at < $1 RETURNING tasks.task_id",
                kNotifySubmitted)};

const Statement kReapFail{
    "conveyor_reap_fail",
    NotifyAfter("UPDATE tasks SET status = 'FAILED', error_code = 'worker_lost',"
                " error_message = $2, finished_at = $1, updated_at = $1, " +
                    kClearLease +
                    " FROM unnest($3::uuid[], $4::text[], $5::integer[])"
                    " AS r (task_id, owner, attempts)"
                    " WHERE tasks.task_id = r.task_id AND tasks.status = 'PROCESSING'"
                    " AND tasks.lease_owner = r.owner AND tasks.attempts = r.attempts"
                    " AND tasks.lease_expires_at < $1 RETURNING tasks.task_id",
                kNotifyFinished)};

// SKIP LOCKED leaves alone a task that a redrive is changing at this moment.
// The deletes of keys, texts and tasks are one statement, so the foreign
// key checks at its end find no orphan.
const Statement kPrune{
    "conveyor_prune",
    "WITH doomed AS MATERIALIZED ("
    " SELECT task_id FROM tasks WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')"
    " AND finished_at < $1 ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED),"
    " deleted_keys AS (DELETE FROM idempotency_keys k USING doomed d WHERE k.task_id = d.task_id),"
    " deleted_texts AS (DELETE FROM task_texts x USING doomed d WHERE x.task_id = d.task_id),"
    " deleted_tasks AS (DELETE FROM tasks t USING doomed d WHERE t.task_id = d.task_id"
    " RETURNING t.task_id)"
    " SELECT count(*) FROM deleted_tasks"};

const Statement kSelectMeta{"conveyor_select_meta", "SELECT value FROM meta WHERE name = $1"};

const Statement kPing{"conveyor_ping", "SELECT 1"};

bool IsCanonicalUuid(std::string_view text) {
    if (!IsUuid(text)) {
        return false;
    }
    for (const char c : text) {
        if (c >= 'A' && c <= 'F') {
            return false;
        }
    }
    return true;
}

ListStatement BuildListStatement(const ListQuery& query, std::optional<TaskStatus> status) {
    ListStatement built;
    std::string name = "conveyor_list";
    std::string sql = "SELECT " + TaskColumns("", false) + " FROM tasks WHERE tenant = $1";
    built.params.Text(query.tenant);
    auto next = [&] { return "$" + std::to_string(built.params.size() + 1); };

    if (status) {
        name += "_status";
        sql += " AND status = " + next();
        built.params.Text(ToString(*status));
    }
    if (query.type) {
        name += "_type";
        sql += " AND type = " + next();
        built.params.Text(*query.type);
    }
    if (query.created_after) {
        name += "_after";
        sql += " AND created_at > " + next();
        built.params.Int64(*query.created_after);
    }
    if (query.created_before) {
        name += "_before";
        sql += " AND created_at < " + next();
        built.params.Int64(*query.created_before);
    }

    const char* less_or_greater = query.descending ? "<" : ">";
    if (query.after && IsCanonicalUuid(query.after->task_id)) {
        // A row-value comparison is one range on an index that ends in
        // (created_at, task_id), so a page costs the same at any depth.
        name += "_position";
        const std::string created_at = next();
        built.params.Int64(query.after->created_at);
        const std::string task_id = next();
        built.params.Text(query.after->task_id);
        sql += std::string(" AND (created_at, task_id) ") + less_or_greater + " (" + created_at +
               ", " + task_id + "::uuid)";
    } else if (query.after) {
        // A position whose id is no canonical UUID never comes from a real
        // page, but it still orders as bytes, as the SQLite store compares
        // it. Only created_at bounds the index range here.
        name += "_raw_position";
        const std::string created_at = next();
        built.params.Int64(query.after->created_at);
        const std::string task_id = next();
        built.params.OwnedBytes(query.after->task_id);
        sql += std::string(" AND created_at ") + less_or_greater + "= " + created_at +
               " AND (created_at " + less_or_greater + " " + created_at +
               " OR convert_to(task_id::text, 'UTF8') " + less_or_greater + " " + task_id +
               "::bytea)";
    }

    if (query.descending) {
        name += "_desc";
        sql += " ORDER BY created_at DESC, task_id DESC";
    } else {
        sql += " ORDER BY created_at, task_id";
    }
    sql += " LIMIT " + next();
    built.params.Int64(query.limit + 1);

    built.statement = Statement{std::move(name), std::move(sql)};
    return built;
}

}  // namespace conveyor::postgres
