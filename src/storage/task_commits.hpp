#pragma once

// The group commits of the task store's two busiest writes: submissions,
// and completions of finished attempts.

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>

#include "storage/group_commit.hpp"
#include "storage/task_store.hpp"

namespace conveyor {

using CreateCommit = GroupCommit<CreateRequest, Result<CreateOutcome>>;
using CompleteCommit = GroupCommit<CompleteRequest, Result<FenceOutcome>>;

// At most this many writes share one transaction, which bounds how long a
// batch holds the database's write lock.
inline constexpr std::size_t kMaxGroupCommit = 256;

// Both use `store.WriteLanes()` lanes; `store` must outlive them.
std::unique_ptr<CreateCommit> MakeCreateCommit(TaskStore& store);
std::unique_ptr<CompleteCommit> MakeCompleteCommit(TaskStore& store);

// The lane of a submission: one lane per idempotency key, so two
// submissions with the same key are never in concurrent transactions, and
// any lane without a key.
std::size_t CreateLane(std::string_view tenant, const std::optional<IdempotencyKey>& key);

}  // namespace conveyor
