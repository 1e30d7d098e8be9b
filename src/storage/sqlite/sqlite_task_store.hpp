#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/duration.hpp"
#include "storage/task_store.hpp"

namespace conveyor {

namespace sqlite {
class Connection;
class Statement;
}  // namespace sqlite

struct SqliteOptions {
    std::string path;  // created when missing, but its directory must exist
    Millis busy_timeout{5000};
    int reader_count = 4;
};

// A TaskStore in one SQLite file that several processes may share.
//
// Each store object has one writer connection behind a mutex and a pool of
// `reader_count` reader connections, so reads do not wait behind writes. The
// file is in WAL mode with synchronous=FULL, so a write is on disk when its
// method returns. Every write runs in a BEGIN IMMEDIATE transaction, which
// waits up to `busy_timeout` for other connections and processes and then
// fails with kUnavailable.
//
// Beyond the TaskStore contract:
// - Create returns kConflict when the task id already exists. Nothing is
//   stored, and the caller may retry with a new id.
// - List returns kInvalidArgument for a limit outside 1..1000.
// - CursorKey returns the 32 raw key bytes (not hex). It is kInternal
//   before Migrate has run once on the file.
//
// Thread-safe.
class SqliteTaskStore final : public TaskStore {
  public:
    // Opens (and creates, when missing) the file at `options.path`.
    // kUnavailable when it cannot be opened; kInvalidArgument for an empty
    // path or ":memory:", which separate connections cannot share.
    static Result<std::unique_ptr<SqliteTaskStore>> Open(SqliteOptions options);

    ~SqliteTaskStore() override;

    Status Migrate() override;
    Result<std::string> CursorKey() override;
    Status Ping() override;
    Result<CreateOutcome> Create(const NewTask& task,
                                 const std::optional<IdempotencyKey>& key) override;
    std::vector<Result<CreateOutcome>> CreateBatch(
        std::span<const CreateRequest> requests) override;
    Result<Task> Get(std::string_view tenant, std::string_view task_id, bool include_text) override;
    Result<std::int64_t> CountPending(std::string_view tenant, std::int64_t limit) override;
    Result<std::vector<std::pair<std::string, TaskStatus>>> GetStatuses(
        const std::vector<std::string>& task_ids) override;
    Result<TaskPage> List(const ListQuery& query) override;
    Result<Task> Cancel(std::string_view tenant, std::string_view task_id, UnixMillis now) override;
    Result<Task> Redrive(std::string_view tenant, std::string_view task_id,
                         UnixMillis now) override;
    Result<std::vector<ClaimedTask>> Claim(std::string_view owner, int limit, UnixMillis now,
                                           Millis lease) override;
    Result<std::vector<std::string>> RenewLeases(std::string_view owner, UnixMillis now,
                                                 Millis lease) override;
    Result<std::vector<std::string>> HeldLeases(std::string_view owner) override;
    Result<FenceOutcome> Complete(const Lease& lease, std::string_view result_json,
                                  UnixMillis now) override;
    std::vector<Result<FenceOutcome>> CompleteBatch(std::span<const CompleteRequest> requests,
                                                    UnixMillis now) override;
    Result<FenceOutcome> Fail(const Lease& lease, const TaskError& error,
                              std::optional<UnixMillis> retry_at, UnixMillis now) override;
    Result<FenceOutcome> HandBack(const Lease& lease, UnixMillis now) override;
    Result<ReapOutcome> ReapExpired(UnixMillis now, int limit,
                                    const std::function<Millis(int attempts)>& backoff) override;
    Result<int> PruneFinished(UnixMillis finished_before, int limit) override;
    Result<TaskStats> Stats() override;

  private:
    class ReaderLease;
    using BindFunction = std::function<void(sqlite::Statement&)>;

    SqliteTaskStore(std::unique_ptr<sqlite::Connection> writer,
                    std::vector<std::unique_ptr<sqlite::Connection>> readers);

    // Waits for an idle reader connection and lends it until the lease ends.
    ReaderLease AcquireReader();
    void ReturnReader(std::unique_ptr<sqlite::Connection> reader);

    Result<Task> ChangeStatus(const std::string& sql, std::string_view tenant,
                              std::string_view task_id, UnixMillis now,
                              std::optional<TaskStatus> unchanged_status);
    Result<FenceOutcome> FencedWrite(const std::string& sql, const Lease& lease,
                                     const BindFunction& bind);

    // One submission waiting for the next group commit.
    struct PendingCreate {
        const NewTask* task;
        const std::optional<IdempotencyKey>* key;
        std::optional<Result<CreateOutcome>> result;
    };

    // Stores every queued submission in one write transaction and fills in
    // each one's result. Called by one thread at a time, the batch leader.
    void CommitBatch(const std::vector<PendingCreate*>& batch);

    std::mutex writer_mutex_;
    std::unique_ptr<sqlite::Connection> writer_;  // guarded by writer_mutex_

    // Group commit: concurrent Create calls queue here, and whichever finds
    // no leader at work commits the whole queue with one fsync.
    std::mutex batch_mutex_;
    std::condition_variable batch_committed_;
    std::vector<PendingCreate*> batch_queue_;  // guarded by batch_mutex_
    bool batch_leader_active_ = false;         // guarded by batch_mutex_

    std::mutex readers_mutex_;
    std::condition_variable reader_returned_;
    std::vector<std::unique_ptr<sqlite::Connection>> idle_readers_;  // guarded by readers_mutex_

    std::mutex cursor_key_mutex_;
    std::optional<std::string> cursor_key_;  // guarded by cursor_key_mutex_
};

}  // namespace conveyor
