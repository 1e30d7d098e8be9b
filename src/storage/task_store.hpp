#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/duration.hpp"
#include "core/status.hpp"
#include "storage/change_feed.hpp"
#include "storage/task.hpp"

namespace conveyor {

// A task to insert. The caller generates the id and the timestamp.
struct NewTask {
    std::string task_id;
    std::string tenant;
    std::string type;
    std::string params_json;
    std::optional<std::string> metadata_json;
    std::string text;  // any bytes, NUL included
    int max_attempts = 3;
    UnixMillis created_at = 0;
    std::optional<std::string> traceparent;  // a valid W3C traceparent header, stored as sent
};

// An Idempotency-Key header and a digest of the request body it came with.
struct IdempotencyKey {
    std::string key;
    std::string request_hash;
};

enum class CreateDisposition {
    kCreated,    // a new task was stored
    kReplayed,   // the key was seen before with the same body; `task` is that task
    kKeyReused,  // the key was seen before with another body; nothing changed
};

struct CreateOutcome {
    CreateDisposition disposition = CreateDisposition::kCreated;
    Task task;  // empty for kKeyReused
};

// One submission of a group commit. The pointers stay valid until the
// batch call returns.
struct CreateRequest {
    const NewTask* task = nullptr;
    const std::optional<IdempotencyKey>* key = nullptr;
};

// A place in the (created_at, task_id) order of tasks.
struct ListPosition {
    UnixMillis created_at = 0;
    std::string task_id;
};

struct ListQuery {
    std::string tenant;
    std::vector<TaskStatus> statuses;  // empty means any
    std::optional<std::string> type;
    std::optional<UnixMillis> created_after;   // exclusive
    std::optional<UnixMillis> created_before;  // exclusive
    bool descending = true;
    int limit = 20;
    std::optional<ListPosition> after;  // resume strictly past this position
};

struct TaskPage {
    std::vector<Task> items;  // without text and result
    bool has_more = false;
};

// The fencing token of one attempt: only the holder of the current lease
// for this attempt number can finish it.
struct Lease {
    std::string task_id;
    std::string owner;
    int attempt = 0;
};

struct ClaimedTask {
    Task task;  // with text
    Lease lease;
};

enum class FenceOutcome {
    kApplied,  // the write landed
    kLost,     // the lease was no longer ours: cancelled, reclaimed or expired
};

// One finished attempt of a group commit. The lease and the result outlive
// the batch call.
struct CompleteRequest {
    const Lease* lease = nullptr;
    std::string_view result_json;
};

// The outcome of one reaper pass.
struct ReapOutcome {
    int requeued = 0;  // back to PENDING with worker_lost and a back-off
    int failed = 0;    // FAILED with worker_lost, no attempts left
    std::vector<std::string> requeued_ids;
    std::vector<std::string> failed_ids;
};

// How many tasks are in each state, and the head of the claim queue.
struct TaskStats {
    std::array<std::int64_t, 5> by_status{};  // indexed by TaskStatus
    // The earliest eligible_at of a PENDING task, including one still in its
    // retry back-off; nullopt when no task is PENDING.
    std::optional<UnixMillis> earliest_pending_eligible_at;
};

// Durable storage of tasks. Every method blocks on the database, so callers
// on an event loop run them on a separate thread pool. Implementations are
// thread-safe. Errors: kNotFound and kConflict where each method documents them,
// kUnavailable when the database cannot be reached, kInternal otherwise.
// Every state change is one conditional write that names the state it
// leaves, so racing actors cannot both win a transition.
class TaskStore {
  public:
    virtual ~TaskStore() = default;

    // Creates or upgrades the schema; safe to call on every start.
    virtual Status Migrate() = 0;

    // Returns the secret that signs list cursors. It is generated once and
    // kept in the database, so every process sharing it agrees.
    virtual Result<std::string> CursorKey() = 0;

    // Checks that the database responds.
    virtual Status Ping() = 0;

    // Opens a feed of changes made by every process sharing the database,
    // or returns nullptr when the backend has none and callers must poll.
    virtual std::unique_ptr<ChangeFeed> OpenChangeFeed() { return nullptr; }

    // Stores a PENDING task, durably, before returning. With a key, the
    // check of the key and the insert are one atomic step: concurrent calls
    // with the same tenant and key create one task.
    virtual Result<CreateOutcome> Create(const NewTask& task,
                                         const std::optional<IdempotencyKey>& key) = 0;

    // Stores several submissions, each as Create would, sharing one
    // transaction and one durable commit where the backend allows. Returns
    // one result per request, in order. An error that a single submission
    // causes (kConflict for its id) fails that one alone.
    virtual std::vector<Result<CreateOutcome>> CreateBatch(
        std::span<const CreateRequest> requests) {
        std::vector<Result<CreateOutcome>> results;
        results.reserve(requests.size());
        for (const CreateRequest& request : requests) {
            results.push_back(Create(*request.task, *request.key));
        }
        return results;
    }

    // Returns one task of `tenant`, or kNotFound.
    virtual Result<Task> Get(std::string_view tenant, std::string_view task_id,
                             bool include_text) = 0;

    // Returns the statuses of those of `task_ids` that exist, in any order
    // and for any tenant. Long polls use it to learn that a task finished.
    virtual Result<std::vector<std::pair<std::string, TaskStatus>>> GetStatuses(
        const std::vector<std::string>& task_ids) = 0;

    // Returns one page in (created_at, task_id) order.
    virtual Result<TaskPage> List(const ListQuery& query) = 0;

    // Returns how many PENDING tasks `tenant` has, counting no further than
    // `limit`, so the cost is at most `limit` index entries whatever the
    // size of the queue.
    virtual Result<std::int64_t> CountPending(std::string_view tenant, std::int64_t limit) = 0;

    // PENDING or PROCESSING become CANCELLED; CANCELLED stays. Returns the
    // task as it now is; kConflict for COMPLETED and FAILED; kNotFound.
    virtual Result<Task> Cancel(std::string_view tenant, std::string_view task_id,
                                UnixMillis now) = 0;

    // FAILED or CANCELLED go back to PENDING with attempts 0 and no error.
    // kConflict for any other status; kNotFound.
    virtual Result<Task> Redrive(std::string_view tenant, std::string_view task_id,
                                 UnixMillis now) = 0;

    // Leases up to `limit` eligible PENDING tasks, oldest first, to `owner`
    // until now + lease, adding one to their attempts.
    virtual Result<std::vector<ClaimedTask>> Claim(std::string_view owner, int limit,
                                                   UnixMillis now, Millis lease) = 0;

    // Extends every lease `owner` holds to now + lease. Returns the ids of
    // the tasks it still holds.
    virtual Result<std::vector<std::string>> RenewLeases(std::string_view owner, UnixMillis now,
                                                         Millis lease) = 0;

    // Returns the ids of the PROCESSING tasks leased to `owner`, without
    // writing. A running task missing from it was cancelled or reclaimed.
    virtual Result<std::vector<std::string>> HeldLeases(std::string_view owner) = 0;

    // PROCESSING to COMPLETED with `result_json`, fenced by `lease`.
    virtual Result<FenceOutcome> Complete(const Lease& lease, std::string_view result_json,
                                          UnixMillis now) = 0;

    // Completes several attempts, each as Complete would, sharing one
    // transaction and one durable commit where the backend allows. Returns
    // one result per request, in order.
    virtual std::vector<Result<FenceOutcome>> CompleteBatch(
        std::span<const CompleteRequest> requests, UnixMillis now) {
        std::vector<Result<FenceOutcome>> results;
        results.reserve(requests.size());
        for (const CompleteRequest& request : requests) {
            results.push_back(Complete(*request.lease, request.result_json, now));
        }
        return results;
    }

    // How many group commits of one kind may usefully run at once: 1 for a
    // database with a single writer.
    virtual int WriteLanes() const { return 1; }

    // Records a failed attempt, fenced by `lease`: with `retry_at` the task
    // goes back to PENDING until then, otherwise it becomes FAILED.
    virtual Result<FenceOutcome> Fail(const Lease& lease, const TaskError& error,
                                      std::optional<UnixMillis> retry_at, UnixMillis now) = 0;

    // Hands an unfinished attempt back at shutdown: PENDING, eligible now,
    // and the attempt is not counted.
    virtual Result<FenceOutcome> HandBack(const Lease& lease, UnixMillis now) = 0;

    // Finds up to `limit` PROCESSING tasks whose lease expired before `now`.
    // Those with attempts left go back to PENDING with error worker_lost,
    // eligible at now + backoff(attempts); the others become FAILED.
    virtual Result<ReapOutcome> ReapExpired(UnixMillis now, int limit,
                                            const std::function<Millis(int attempts)>& backoff) = 0;

    // Deletes up to `limit` tasks that reached a terminal state before
    // `finished_before`, with their texts and idempotency keys, oldest first.
    // Returns how many tasks were deleted; a caller prunes in small batches
    // until that is less than `limit`. Callers keep `finished_before` at
    // least 24 hours in the past, so idempotency keys live that long.
    virtual Result<int> PruneFinished(UnixMillis finished_before, int limit) = 0;

    // Returns the task counts by state and the head of the claim queue
    // without scanning the tasks. Every transaction that changes a task's
    // state updates a table of counts, and the head is the first entry of
    // the claim index, so the cost does not grow with the number of tasks.
    virtual Result<TaskStats> Stats() { return Status::Internal("Stats is not implemented"); }
};

// Opens the store that a --database value names: "sqlite:PATH" or a
// "postgresql://" URL. kInvalidArgument for an unknown scheme.
Result<std::unique_ptr<TaskStore>> OpenTaskStore(std::string_view database_url);

}  // namespace conveyor
