#include "storage/task.hpp"

namespace conveyor {

std::string_view ToString(TaskStatus status) {
    switch (status) {
        case TaskStatus::kPending:
            return "PENDING";
        case TaskStatus::kProcessing:
            return "PROCESSING";
        case TaskStatus::kCompleted:
            return "COMPLETED";
        case TaskStatus::kFailed:
            return "FAILED";
        case TaskStatus::kCancelled:
            return "CANCELLED";
    }
    return "PENDING";
}

std::optional<TaskStatus> ParseTaskStatus(std::string_view text) {
    for (const TaskStatus status :
         {TaskStatus::kPending, TaskStatus::kProcessing, TaskStatus::kCompleted,
          TaskStatus::kFailed, TaskStatus::kCancelled}) {
        if (ToString(status) == text) {
            return status;
        }
    }
    return std::nullopt;
}

bool IsTerminal(TaskStatus status) {
    return status == TaskStatus::kCompleted || status == TaskStatus::kFailed ||
           status == TaskStatus::kCancelled;
}

}  // namespace conveyor
