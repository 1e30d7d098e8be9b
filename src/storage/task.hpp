#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/time.hpp"

namespace conveyor {

// The states of a task. COMPLETED, FAILED and CANCELLED are terminal.
enum class TaskStatus { kPending, kProcessing, kCompleted, kFailed, kCancelled };

// Returns the wire name: "PENDING", "PROCESSING", ...
std::string_view ToString(TaskStatus status);

// Parses a wire name; case-sensitive. Returns nullopt for anything else.
std::optional<TaskStatus> ParseTaskStatus(std::string_view text);

bool IsTerminal(TaskStatus status);

// The last failure of a task. `code` is one of invalid_input,
// processing_error, worker_lost, timeout, injected_failure.
struct TaskError {
    std::string code;
    std::string message;
};

// One task row as the API shows it. JSON-valued fields hold serialized
// JSON text so that storage never has to understand their contents.
struct Task {
    std::string task_id;
    std::string tenant;
    std::string type;
    TaskStatus status = TaskStatus::kPending;
    std::string params_json;
    std::optional<std::string> metadata_json;
    std::int64_t text_bytes = 0;
    std::optional<std::string> text;  // only when the caller asked for it
    int attempts = 0;
    int max_attempts = 0;
    UnixMillis created_at = 0;
    UnixMillis updated_at = 0;
    std::optional<UnixMillis> started_at;
    std::optional<UnixMillis> finished_at;
    std::optional<UnixMillis> next_attempt_at;
    std::optional<std::string> result_json;
    std::optional<TaskError> error;
    // The traceparent header sent with the submission. Only Claim reads it.
    std::optional<std::string> traceparent;
};

}  // namespace conveyor
