#pragma once

#include <string>

#include "storage/task_store.hpp"

// The SQL of the SQLite task store, in one place so that tests can run
// EXPLAIN QUERY PLAN on exactly the statements the store runs. Parameters
// are numbered (?1, ?2, ...), and each statement's comment lists them.
//
// Status values are written as literals, never bound, because SQLite uses a
// partial index (WHERE status = 'PENDING') only when the query names the
// same literal.
namespace conveyor::sqlite {

// The columns that a Task is read from, in order. The summary omits
// result_json, which kTaskColumns adds at the end.
extern const std::string kTaskSummaryColumns;
extern const std::string kTaskColumns;
inline constexpr int kTaskSummaryColumnCount = 16;

// ?1 task_id, ?2 tenant, ?3 type, ?4 params_json, ?5 metadata_json,
// ?6 text_bytes, ?7 max_attempts, ?8 created_at, ?9 traceparent.
extern const std::string kInsertTaskSql;
// ?1 tasks.id, ?2 text.
extern const std::string kInsertTextSql;
// ?1 tenant, ?2 key. Returns request_hash, task_id.
extern const std::string kSelectIdempotencyKeySql;
// ?1 tenant, ?2 key, ?3 request_hash, ?4 task_id, ?5 created_at.
extern const std::string kInsertIdempotencyKeySql;

// ?1 task_id, ?2 tenant. Returns kTaskColumns.
extern const std::string kSelectTaskSql;
// ?1 task_id, ?2 tenant. Returns kTaskColumns, then the text.
extern const std::string kSelectTaskWithTextSql;
// ?1 .. ?kStatusBatchSize: task ids, NULL where unused. Returns task_id, status.
inline constexpr int kStatusBatchSize = 500;
extern const std::string kSelectStatusesSql;

// ?1 tenant, ?2 limit. Returns one row per PENDING task of the tenant, at
// most the limit. The caller counts them: a count(*) around a LIMIT needs
// a subquery, which SQLite scans as a second table.
extern const std::string kSelectPendingSql;

// ?1 task_id, ?2 tenant, ?3 now. Returns kTaskColumns.
extern const std::string kCancelSql;
// ?1 task_id, ?2 tenant, ?3 now. Returns kTaskColumns.
extern const std::string kRedriveSql;

// ?1 owner, ?2 lease expiry, ?3 now, ?4 limit. Returns id, eligible_at,
// traceparent, then kTaskColumns.
extern const std::string kClaimSql;
// Returns status and count, one row per state.
extern const std::string kSelectTaskCountsSql;
// Returns the eligible_at of the first PENDING task in claim order, if any.
extern const std::string kSelectClaimHeadSql;
// ?1 tasks.id. Returns the text.
extern const std::string kSelectTextSql;
// ?1 owner, ?2 lease expiry, ?3 now. Returns task_id.
extern const std::string kRenewLeasesSql;
// ?1 owner. Returns task_id.
extern const std::string kSelectHeldLeasesSql;

// The fenced writes share ?1 task_id, ?2 lease owner, ?3 attempt.
// Complete: ?4 result_json, ?5 now.
extern const std::string kCompleteSql;
// Fail with a retry: ?4 error code, ?5 error message, ?6 retry_at, ?7 now.
extern const std::string kFailRetrySql;
// Fail for good: ?4 error code, ?5 error message, ?6 now.
extern const std::string kFailFinalSql;
// Hand back: ?4 now.
extern const std::string kHandBackSql;

// ?1 now, ?2 limit. Returns id, lease_owner, attempts, max_attempts.
extern const std::string kSelectExpiredSql;
// The reaper's writes share ?1 tasks.id, ?2 lease owner, ?3 attempts,
// ?4 now, ?5 error message. Requeue adds ?6 eligible_at.
extern const std::string kReapRequeueSql;
extern const std::string kReapFailSql;

// ?1 name. Returns value.
extern const std::string kSelectMetaSql;
// No parameters; reads the first page of the file.
extern const std::string kPingSql;

// The optional parts of one list statement.
struct ListShape {
    bool status = false;          // ?2 status
    bool type = false;            // ?3 type
    bool created_after = false;   // ?4, exclusive
    bool created_before = false;  // ?5, exclusive
    bool position = false;        // ?6 created_at, ?7 task_id, exclusive
    bool descending = true;
};

// Returns the SELECT for one page of kTaskSummaryColumns with ?1 tenant and
// ?8 row limit, plus the parameters that `shape` names.
std::string ListSql(const ListShape& shape);

// Returns the shape of the statement that runs `query` for one status (or
// for any status, when `status` is false).
ListShape ListShapeOf(const ListQuery& query, bool status);

// Pruning of finished tasks, one task at a time inside one transaction.
extern const std::string kSelectPrunableSql;
extern const std::string kDeleteKeysOfTaskSql;
extern const std::string kDeleteTextSql;
extern const std::string kDeleteTaskSql;

}  // namespace conveyor::sqlite
