#pragma once

#include <optional>
#include <string>

#include "storage/postgres/postgres_connection.hpp"
#include "storage/task_store.hpp"

// The SQL of the PostgreSQL task store, in one place so that tests can run
// EXPLAIN on exactly the statements the store runs. Each comment lists the
// parameters ($1, $2, ...) and the columns a statement returns.
//
// Status values are literals, never parameters, so that the planner can
// prove a query implies a partial index's predicate. Writes that other
// processes should hear of call pg_notify on the channel kChangeChannel in
// the same statement, so the notification is sent if and only if the
// change commits.
namespace conveyor::postgres {

// The LISTEN/NOTIFY channel. Payloads: "s" for new eligible work (one per
// transaction, however many tasks it made eligible, because PostgreSQL
// drops identical payloads within a transaction), "f:<task id>" when a
// task reached a terminal state, and "c:<task id>" when it was cancelled.
// NOTE: PostgreSQL serializes the commits of all transactions that notify,
// cluster-wide, on a lock held until after the commit record is flushed
// (PreCommit_Notify in src/backend/commands/async.c). Every Create and
// every finish notifies, so their combined rate is capped near one commit
// per WAL flush, whatever the number of connections.
inline constexpr char kChangeChannel[] = "conveyor_tasks";

// The columns a Task is read from, in order; kTaskSummaryColumnCount of
// them without result_json, which comes last.
inline constexpr int kTaskSummaryColumnCount = 16;

// $1 task_id, $2 tenant, $3 type, $4 params_json, $5 metadata_json,
// $6 text_bytes, $7 max_attempts, $8 created_at, $9 text (bytea),
// $10 traceparent. Stores the task and its text and returns one row, or
// fails with 23505 when the id exists.
extern const Statement kInsertTask;
// The same, but $10 idempotency key, $11 request hash and $12
// traceparent: the key is
// inserted first with ON CONFLICT DO NOTHING, and only when it is new does
// the task follow. Returns one row when it stored the task, none when the
// key existed.
extern const Statement kInsertTaskWithKey;
extern const Statement kNotifySubmissions;
// $1 tenant, $2 key. Returns request_hash, then the task columns (NULL when
// the task is gone).
extern const Statement kSelectKey;

// $1 task_id, $2 tenant. Returns the task columns.
extern const Statement kSelectTask;
// $1 task_id, $2 tenant. Returns the task columns, then the text.
extern const Statement kSelectTaskWithText;
// $1 uuid[]. Returns task_id, status.
extern const Statement kSelectStatuses;

// $1 tenant, $2 limit. Returns the number of PENDING tasks of the tenant,
// at most the limit.
extern const Statement kCountPending;

// $1 task_id, $2 tenant, $3 now. Return the task columns of a changed row.
extern const Statement kCancel;
extern const Statement kRedrive;

// $1 owner, $2 lease expiry, $3 now, $4 limit. Returns the task columns,
// then the text and the traceparent, in claim order.
extern const Statement kClaim;
// Returns one row: the task counts by state (PENDING, PROCESSING,
// COMPLETED, FAILED, CANCELLED), then the earliest eligible_at of a PENDING
// task or NULL.
extern const Statement kSelectTaskStats;
// Moves the rows of task_count_changes into slot 0 of task_counts.
extern const Statement kFoldTaskCounts;
// $1 owner. Locks the owner's leased rows in task_id order; returns their count.
extern const Statement kLockHeldLeases;
// $1 owner, $2 lease expiry. Returns task_id.
extern const Statement kRenewLeases;
// $1 owner. Returns task_id.
extern const Statement kSelectHeldLeases;

// The fenced writes share $1 task_id, $2 lease owner, $3 attempt, and
// return one row when the write landed.
// Complete: $4 result_json, $5 now.
extern const Statement kComplete;
// Completes many tasks: $1 task ids, $2 lease owners, $3 attempts, $4 result
// JSON texts (arrays in the same order), $5 now. Returns the id of each task
// whose lease still held.
extern const Statement kCompleteBatch;
// Fail with a retry: $4 error code, $5 error message, $6 retry_at, $7 now.
extern const Statement kFailRetry;
// Fail for good: $4 error code, $5 error message, $6 now.
extern const Statement kFailFinal;
// Hand back: $4 now.
extern const Statement kHandBack;

// $1 now, $2 limit. Locks the rows it returns (SKIP LOCKED), inside the
// caller's transaction. Returns task_id, lease_owner, attempts,
// max_attempts.
extern const Statement kSelectExpired;
// $1 now, $2 error message, $3 task ids, $4 owners, $5 attempts,
// $6 eligible_at values (arrays of one entry per task). Returns task_id of
// each row it changed.
extern const Statement kReapRequeue;
// $1 now, $2 error message, $3 task ids, $4 owners, $5 attempts. Returns
// task_id of each row it changed.
extern const Statement kReapFail;

// $1 finished_before, $2 limit. Deletes the tasks with their texts and
// keys, and returns the number of tasks deleted. Run it unprepared: a
// generic plan cannot see the limit, assumes a tenth of the table, and
// joins by scanning all three tables.
extern const Statement kPrune;

// $1 name. Returns value.
extern const Statement kSelectMeta;
extern const Statement kPing;

// One list statement and the parameters to run it with.
struct ListStatement {
    Statement statement;
    Params params;
};

// Builds the statement for one page of `query` restricted to `status` (or
// any status), returning the summary columns and at most limit + 1 rows.
// Run it unprepared, so that it is planned with its values: a generic plan
// of a query with a status, a type and both created_at bounds reads the
// whole range through a bitmap scan and sorts it.
ListStatement BuildListStatement(const ListQuery& query, std::optional<TaskStatus> status);

// Returns true when `text` is a UUID in the lower-case canonical form that
// the uuid type prints. Other ids cannot name a stored task.
bool IsCanonicalUuid(std::string_view text);

}  // namespace conveyor::postgres
