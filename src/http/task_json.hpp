#pragma once

#include <string>

#include "storage/task.hpp"

namespace conveyor::http {

// Serializes the task resource. `include_result` adds "result" (lists leave
// it out); "text" appears when the task carries it.
std::string TaskToJson(const Task& task, bool include_result);

// Appends the task resource to `out`, as TaskToJson does.
void AppendTaskJson(std::string& out, const Task& task, bool include_result);

}  // namespace conveyor::http
