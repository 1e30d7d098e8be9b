#include "storage/task_commits.hpp"

#include <functional>
#include <string>

#include "core/time.hpp"

namespace conveyor {

std::unique_ptr<CreateCommit> MakeCreateCommit(TaskStore& store) {
    return std::make_unique<CreateCommit>(
        [&store](std::span<const CreateRequest> requests) { return store.CreateBatch(requests); },
        store.WriteLanes(), kMaxGroupCommit);
}

std::unique_ptr<CompleteCommit> MakeCompleteCommit(TaskStore& store) {
    return std::make_unique<CompleteCommit>(
        [&store](std::span<const CompleteRequest> requests) {
            return store.CompleteBatch(requests, NowMillis());
        },
        store.WriteLanes(), kMaxGroupCommit);
}

std::size_t CreateLane(std::string_view tenant, const std::optional<IdempotencyKey>& key) {
    if (!key) {
        return CreateCommit::kAnyLane;
    }
    std::string scoped(tenant);
    scoped.push_back('\0');
    scoped.append(key->key);
    // kAnyLane is the largest value, so a real hash is kept below it.
    return std::hash<std::string>{}(scoped) % (CreateCommit::kAnyLane - 1);
}

}  // namespace conveyor
