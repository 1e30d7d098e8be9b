#include "storage/instrumented_task_store.hpp"

#include "core/metrics.hpp"

namespace conveyor {
namespace {

void CountError(const Status& status) {
    metrics::ServiceCounters& counters = metrics::Service();
    if (status.code() == StatusCode::kUnavailable) {
        counters.db_errors_unavailable.Add();
    } else if (status.code() == StatusCode::kInternal) {
        counters.db_errors_internal.Add();
    }
}

template <typename T>
void CountErrors(const Result<T>& result) {
    if (!result.ok()) {
        CountError(result.status());
    }
}

void CountErrors(const Status& status) {
    CountError(status);
}

template <typename T>
void CountErrors(const std::vector<Result<T>>& results) {
    for (const Result<T>& result : results) {
        CountErrors(result);
    }
}

// Counts a call as running until it returns or throws.
struct InFlight {
    InFlight() { metrics::Service().db_calls_in_flight.Add(1); }
    ~InFlight() { metrics::Service().db_calls_in_flight.Add(-1); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
};

// Counts one call while it runs, then its errors.
template <typename Call>
auto Track(Call call) {
    InFlight in_flight;
    auto result = call();
    CountErrors(result);
    return result;
}

class InstrumentedTaskStore final : public TaskStore {
  public:
    explicit InstrumentedTaskStore(std::unique_ptr<TaskStore> store) : store_(std::move(store)) {}

    Status Migrate() override {
        return Track([&] { return store_->Migrate(); });
    }
    Result<std::string> CursorKey() override {
        return Track([&] { return store_->CursorKey(); });
    }
    Status Ping() override {
        return Track([&] { return store_->Ping(); });
    }
    std::unique_ptr<ChangeFeed> OpenChangeFeed() override { return store_->OpenChangeFeed(); }
    Result<CreateOutcome> Create(const NewTask& task,
                                 const std::optional<IdempotencyKey>& key) override {
        return Track([&] { return store_->Create(task, key); });
    }
    std::vector<Result<CreateOutcome>> CreateBatch(
        std::span<const CreateRequest> requests) override {
        return Track([&] { return store_->CreateBatch(requests); });
    }
    Result<Task> Get(std::string_view tenant, std::string_view task_id,
                     bool include_text) override {
        return Track([&] { return store_->Get(tenant, task_id, include_text); });
    }
    Result<std::vector<std::pair<std::string, TaskStatus>>> GetStatuses(
        const std::vector<std::string>& task_ids) override {
        return Track([&] { return store_->GetStatuses(task_ids); });
    }
    Result<TaskPage> List(const ListQuery& query) override {
        return Track([&] { return store_->List(query); });
    }
    Result<Task> Cancel(std::string_view tenant, std::string_view task_id,
                        UnixMillis now) override {
        return Track([&] { return store_->Cancel(tenant, task_id, now); });
    }
    Result<Task> Redrive(std::string_view tenant, std::string_view task_id,
                         UnixMillis now) override {
        return Track([&] { return store_->Redrive(tenant, task_id, now); });
    }
    Result<std::vector<ClaimedTask>> Claim(std::string_view owner, int limit, UnixMillis now,
                                           Millis lease) override {
        return Track([&] { return store_->Claim(owner, limit, now, lease); });
    }
    Result<std::vector<std::string>> RenewLeases(std::string_view owner, UnixMillis now,
                                                 Millis lease) override {
        return Track([&] { return store_->RenewLeases(owner, now, lease); });
    }
    Result<std::vector<std::string>> HeldLeases(std::string_view owner) override {
        return Track([&] { return store_->HeldLeases(owner); });
    }
    Result<FenceOutcome> Complete(const Lease& lease, std::string_view result_json,
                                  UnixMillis now) override {
        return Track([&] { return store_->Complete(lease, result_json, now); });
    }
    std::vector<Result<FenceOutcome>> CompleteBatch(std::span<const CompleteRequest> requests,
                                                    UnixMillis now) override {
        return Track([&] { return store_->CompleteBatch(requests, now); });
    }
    int WriteLanes() const override { return store_->WriteLanes(); }
    Result<FenceOutcome> Fail(const Lease& lease, const TaskError& error,
                              std::optional<UnixMillis> retry_at, UnixMillis now) override {
        return Track([&] { return store_->Fail(lease, error, retry_at, now); });
    }
    Result<FenceOutcome> HandBack(const Lease& lease, UnixMillis now) override {
        return Track([&] { return store_->HandBack(lease, now); });
    }
    Result<ReapOutcome> ReapExpired(UnixMillis now, int limit,
                                    const std::function<Millis(int attempts)>& backoff) override {
        return Track([&] { return store_->ReapExpired(now, limit, backoff); });
    }
    Result<int> PruneFinished(UnixMillis finished_before, int limit) override {
        return Track([&] { return store_->PruneFinished(finished_before, limit); });
    }
    Result<std::int64_t> CountPending(std::string_view tenant, std::int64_t limit) override {
        return Track([&] { return store_->CountPending(tenant, limit); });
    }
    Result<TaskStats> Stats() override {
        return Track([&] { return store_->Stats(); });
    }

  private:
    std::unique_ptr<TaskStore> store_;
};

}  // namespace

std::unique_ptr<TaskStore> InstrumentTaskStore(std::unique_ptr<TaskStore> store) {
    return std::make_unique<InstrumentedTaskStore>(std::move(store));
}

}  // namespace conveyor
