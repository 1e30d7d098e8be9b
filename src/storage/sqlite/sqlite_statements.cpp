#include "storage/sqlite/sqlite_statements.hpp"

namespace conveyor::sqlite {
namespace {

const std::string kFence =
    " WHERE task_id = ?1 AND status = 'PROCESSING' AND lease_owner = ?2 AND attempts = ?3";

// The lease must still be the one the reaper saw, and still expired.
const std::string kExpiredLease =
    " WHERE id = ?1 AND status = 'PROCESSING' AND lease_owner = ?2 AND attempts = ?3"
    " AND lease_expires_at < ?4";

const std::string kClearLease = "lease_owner = NULL, lease_expires_at = NULL";

std::string StatusPlaceholders() {
    std::string text;
    for (int i = 1; i <= kStatusBatchSize; ++i) {
        if (i > 1) {
            text += ", ";
        }
        text += "?" + std::to_string(i);
    }
    return text;
}

}  // namespace

const std::string kTaskSummaryColumns =
    "task_id, tenant, type, status, params_json, metadata_json, text_bytes, attempts,"
    " max_attempts, created_at, updated_at, started_at, finished_at, next_attempt_at,"
    " error_code, error_message";

const std::string kTaskColumns = kTaskSummaryColumns + ", result_json";

const std::string kInsertTaskSql =
    "INSERT INTO tasks (task_id, tenant, type, status, params_json, metadata_json, text_bytes,"
    " attempts, max_attempts, created_at, updated_at, eligible_at, traceparent)"
    " VALUES (?1, ?2, ?3, 'PENDING', ?4, ?5, ?6, 0, ?7, ?8, ?8, ?8, ?9)";

const std::string kInsertTextSql = "INSERT INTO task_texts (task_rowid, text) VALUES (?1, ?2)";

const std::string kSelectIdempotencyKeySql =
    "SELECT request_hash, task_id FROM idempotency_keys"
    " WHERE tenant = ?1 AND idempotency_key = ?2";

const std::string kInsertIdempotencyKeySql =
    "INSERT INTO idempotency_keys (tenant, idempotency_key, request_hash, task_id, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";

const std::string kSelectTaskSql =
    "SELECT " + kTaskColumns + " FROM tasks WHERE task_id = ?1 AND tenant = ?2";

const std::string kSelectTaskWithTextSql =
    "SELECT " + kTaskColumns +
    ", text FROM tasks LEFT JOIN task_texts ON task_rowid = id"
    " WHERE task_id = ?1 AND tenant = ?2";

// INDEXED BY makes preparing fail rather than fall back to a scan. After
// ANALYZE on a table of 1,500 rows, SQLite 3.40 planned a scan instead of
// 500 index lookups.
const std::string kSelectStatusesSql =
    "SELECT task_id, status FROM tasks INDEXED BY tasks_task_id"
    " WHERE task_id IN (" +
    StatusPlaceholders() + ")";

const std::string kCancelSql =
    "UPDATE tasks SET status = 'CANCELLED', finished_at = ?3, updated_at = ?3,"
    " next_attempt_at = NULL, " +
    kClearLease +
    " WHERE task_id = ?1 AND tenant = ?2 AND status IN ('PENDING', 'PROCESSING')"
    " RETURNING " +
    kTaskColumns;

const std::string kRedriveSql =
    "UPDATE tasks SET status = 'PENDING', attempts = 0, error_code = NULL, error_message = NULL,"
    " result_json = NULL, finished_at = NULL, next_attempt_at = NULL, eligible_at = ?3,"
    " updated_at = ?3, " +
    kClearLease +
    " WHERE task_id = ?1 AND tenant = ?2 AND status IN ('FAILED', 'CANCELLED')"
    " RETURNING " +
    kTaskColumns;

// The statement selects and leases its rows under the write lock of one
// IMMEDIATE transaction, so two claimers, in any process, never get the same
// row.
const std::string kClaimSql =
    "UPDATE tasks SET status = 'PROCESSING', attempts = attempts + 1, lease_owner = ?1,"
    " lease_expires_at = ?2, started_at = ?3, updated_at = ?3, next_attempt_at = NULL"
    " WHERE id IN (SELECT id FROM tasks WHERE status = 'PENDING' AND eligible_at <= ?3"
    " ORDER BY eligible_at, task_id LIMIT ?4)"
    " RETURNING id, eligible_at, traceparent, " +
    kTaskColumns;

const std::string kSelectTaskCountsSql = "SELECT status, count FROM task_counts";

// The first entry of tasks_claim, the index that claims read.
const std::string kSelectClaimHeadSql =
    "SELECT eligible_at FROM tasks INDEXED BY tasks_claim WHERE status = 'PENDING'"
    " ORDER BY eligible_at, task_id LIMIT 1";

const std::string kSelectTextSql = "SELECT text FROM task_texts WHERE task_rowid = ?1";

// A renewal is bookkeeping, not a change a client can see, so it leaves
// updated_at alone.
const std::string kRenewLeasesSql =
    "UPDATE tasks SET lease_expires_at = ?2"
    " WHERE status = 'PROCESSING' AND lease_owner = ?1 RETURNING task_id";

const std::string kSelectHeldLeasesSql =
    "SELECT task_id FROM tasks WHERE status = 'PROCESSING' AND lease_owner = ?1";

const std::string kCompleteSql =
    "UPDATE tasks SET status = 'COMPLETED', result_json = ?4, finished_at = ?5, updated_at = ?5,"
    " error_code = NULL, error_message = NULL, " +
    kClearLease + kFence;

const std::string kFailRetrySql =
    "UPDATE tasks SET status = 'PENDING', error_code = ?4, error_message = ?5, eligible_at = ?6,"
    " next_attempt_at = ?6, updated_at = ?7, " +
    kClearLease + kFence;

const std::string kFailFinalSql =
    "UPDATE tasks SET status = 'FAILED', error_code = ?4, error_message = ?5, finished_at = ?6,"
    " updated_at = ?6, " +
    kClearLease + kFence;

const std::string kHandBackSql =
    "UPDATE tasks SET status = 'PENDING', attempts = attempts - 1, eligible_at = ?4,"
    " next_attempt_at = NULL, updated_at = ?4, " +
    kClearLease + kFence;

const std::string kSelectExpiredSql =
    "SELECT id, lease_owner, attempts, max_attempts, task_id FROM tasks"
    " WHERE status = 'PROCESSING' AND lease_expires_at < ?1 ORDER BY lease_expires_at LIMIT ?2";

const std::string kReapRequeueSql =
    "UPDATE tasks SET status = 'PENDING', error_code = 'worker_lost', error_message = ?5,"
    " eligible_at = ?6, next_attempt_at = ?6, updated_at = ?4, " +
    kClearLease + kExpiredLease;

const std::string kReapFailSql =
    "UPDATE tasks SET status = 'FAILED', error_code = 'worker_lost', error_message = ?5,"
    " finished_at = ?4, updated_at = ?4, " +
    kClearLease + kExpiredLease;

const std::string kSelectMetaSql = "SELECT value FROM meta WHERE name = ?1";

const std::string kPingSql = "SELECT 1 FROM sqlite_schema LIMIT 1";

// The claim index also covers every PENDING task, so the statement names
// the index that bounds the rows to one tenant.
const std::string kSelectPendingSql =
    "SELECT 1 FROM tasks INDEXED BY tasks_tenant_status_created"
    " WHERE tenant = ?1 AND status = 'PENDING' LIMIT ?2";

ListShape ListShapeOf(const ListQuery& query, bool status) {
    return ListShape{.status = status,
                     .type = query.type.has_value(),
                     .created_after = query.created_after.has_value(),
                     .created_before = query.created_before.has_value(),
                     .position = query.after.has_value(),
                     .descending = query.descending};
}

std::string ListSql(const ListShape& shape) {
    // The index is named because SQLite 3.40, left to choose, took
    // (tenant, created_at) for some queries that filter on status or type and
    // also bound created_at. It would then read every task of the tenant in
    // that range. With INDEXED BY, preparing fails rather than planning a scan.
    std::string index = "tasks_tenant_created";
    if (shape.status) {
        index = "tasks_tenant_status_created";
    } else if (shape.type) {
        index = "tasks_tenant_type_created";
    }

    std::string sql =
        "SELECT " + kTaskSummaryColumns + " FROM tasks INDEXED BY " + index + " WHERE tenant = ?1";
    if (shape.status) {
        sql += " AND status = ?2";
    }
    if (shape.type) {
        sql += " AND type = ?3";
    }
    if (shape.created_after) {
        sql += " AND created_at > ?4";
    }
    if (shape.created_before) {
        sql += " AND created_at < ?5";
    }

    // A row-value comparison is one range on the index that ends in
    // (created_at, task_id), so a page costs the same at any depth.
    if (shape.position) {
        sql += shape.descending ? " AND (created_at, task_id) < (?6, ?7)"
                                : " AND (created_at, task_id) > (?6, ?7)";
    }

    sql += shape.descending ? " ORDER BY created_at DESC, task_id DESC"
                            : " ORDER BY created_at ASC, task_id ASC";
    sql += " LIMIT ?8";
    return sql;
}

const std::string kSelectPrunableSql =
    "SELECT id, task_id FROM tasks INDEXED BY tasks_finished"
    " WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND finished_at < ?1"
    " ORDER BY finished_at LIMIT ?2";

const std::string kDeleteKeysOfTaskSql = "DELETE FROM idempotency_keys WHERE task_id = ?1";

const std::string kDeleteTextSql = "DELETE FROM task_texts WHERE task_rowid = ?1";

const std::string kDeleteTaskSql = "DELETE FROM tasks WHERE id = ?1";

}  // namespace conveyor::sqlite
