#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/duration.hpp"
#include "storage/task_store.hpp"

namespace conveyor {

namespace postgres {
class Connection;
struct Statement;
}  // namespace postgres

struct PostgresOptions {
    // A postgresql:// URI or a libpq key=value string, passed to libpq as
    // it is. It may contain a password, which no message ever repeats.
    std::string url;
    // The maximum number of connections the store opens at once.
    int pool_size = 8;
    // How long a call waits for a free connection before kUnavailable.
    Millis acquire_timeout{30'000};
};

// A TaskStore in a PostgreSQL database that any number of processes share.
//
// The store keeps a pool of up to `pool_size` connections, each opened on
// first use. Each connection prepares a statement the first time it runs
// it and keeps no other session state, so that the store also works through
// a connection pooler in session mode.
// NOTE: behind a pooler in transaction mode (PgBouncer's pool_mode =
// transaction), prepared statements work only with PgBouncer 1.21 or later
// and max_prepared_statements above 0; older versions fail with "prepared
// statement does not exist". LISTEN never works there, so such deployments
// run with --poll-only and never call OpenChangeFeed.
//
// A connection that breaks (a server restart, a network failure, an
// administrator shutdown) is dropped, and the call that found it broken
// fails with kUnavailable. The next call opens a new one. Before a call
// runs, an idle connection that the server has closed (as a stopping server
// closes all of them) is detected without a round trip and replaced, so
// after a restart the first calls usually succeed. A serialization failure
// or deadlock reruns the call's transaction up to three times, then fails
// with kUnavailable.
//
// Every state change is one statement, or one transaction, that names the
// state it leaves and announces itself with pg_notify on commit (see
// postgres_statements.hpp). Writes are durable on return as the server's
// synchronous_commit setting defines.
//
// Beyond the TaskStore contract:
// - Task ids are UUIDs. Create returns kInvalidArgument for an id that is
//   not a lower-case canonical UUID, and the other methods treat such an id
//   as one that does not exist.
// - Create returns kConflict when the task id already exists. Nothing is
//   stored, and the caller may retry with a new id.
// - Concurrent Creates with the same tenant and key never fail because of
//   each other: exactly one returns kCreated, the rest kReplayed.
// - Fail replaces bytes of an error message that PostgreSQL text cannot
//   hold (NUL, invalid UTF-8) with U+FFFD.
// - List returns kInvalidArgument for a limit outside 1..1000.
// - CursorKey returns the 32 raw key bytes. It is kInternal before Migrate
//   has run once on the database.
//
// Thread-safe.
class PostgresTaskStore final : public TaskStore {
  public:
    // Checks the URL and the options without connecting, so that a process
    // can start while the database is down: the first call (normally
    // Migrate) connects, and fails with kUnavailable until the server can
    // be reached and accepts the login. kInvalidArgument for a URL libpq
    // cannot parse or a pool size below 1.
    static Result<std::unique_ptr<PostgresTaskStore>> Open(PostgresOptions options);

    ~PostgresTaskStore() override;

    Status Migrate() override;
    Result<std::string> CursorKey() override;
    Status Ping() override;
    // Returns a feed on its own connection that LISTENs on the change
    // channel, or nullptr when the interrupt descriptor cannot be created.
    std::unique_ptr<ChangeFeed> OpenChangeFeed() override;
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
    int WriteLanes() const override;
    Result<FenceOutcome> Fail(const Lease& lease, const TaskError& error,
                              std::optional<UnixMillis> retry_at, UnixMillis now) override;
    Result<FenceOutcome> HandBack(const Lease& lease, UnixMillis now) override;
    Result<ReapOutcome> ReapExpired(UnixMillis now, int limit,
                                    const std::function<Millis(int attempts)>& backoff) override;
    Result<int> PruneFinished(UnixMillis finished_before, int limit) override;
    Result<TaskStats> Stats() override;

  private:
    class ConnectionLease;

    explicit PostgresTaskStore(PostgresOptions options);

    // Waits for a free pool slot and returns a usable connection on loan,
    // reconnecting the slot when it has none or its connection was lost.
    Result<ConnectionLease> Acquire();
    void Release(std::unique_ptr<postgres::Connection> connection);

    // Runs `work` on a pooled connection, again on a serialization failure
    // or a deadlock, at most kMaxTransactionAttempts times in all.
    template <typename Work>
    auto Run(Work work);

    Result<Task> ChangeStatus(const postgres::Statement& statement, std::string_view tenant,
                              std::string_view task_id, UnixMillis now,
                              std::optional<TaskStatus> unchanged_status,
                              bool (*leaves)(TaskStatus));

    const PostgresOptions options_;
    const std::string target_;  // host, port, database and user, for logs

    std::mutex pool_mutex_;
    std::condition_variable connection_returned_;
    // Free slots; an empty pointer is a slot without a connection. Slots
    // with a connection sit at the back, where Acquire takes from.
    std::vector<std::unique_ptr<postgres::Connection>> idle_;  // guarded by pool_mutex_

    std::mutex cursor_key_mutex_;
    std::optional<std::string> cursor_key_;  // guarded by cursor_key_mutex_

    // Debounced announcement of new work: Create marks it pending, and one
    // thread sends one notification per window for all pending creates.
    void RequestSubmissionNotice();
    void RunSubmissionNotifier();

    std::mutex notice_mutex_;
    std::condition_variable notice_requested_;
    bool notice_pending_ = false;     // guarded by notice_mutex_
    bool notifier_stopping_ = false;  // guarded by notice_mutex_
    std::thread notifier_;
};

}  // namespace conveyor
