#include "http/task_json.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace conveyor::http {
namespace {

void AppendString(std::string& out, std::string_view text) {
    out += boost::json::serialize(boost::json::string_view(text.data(), text.size()));
}

void AppendTimestamp(std::string& out, const std::optional<UnixMillis>& millis) {
    if (millis) {
        out.push_back('"');
        out += FormatTimestamp(*millis);
        out.push_back('"');
    } else {
        out += "null";
    }
}

}  // namespace

void AppendTaskJson(std::string& out, const Task& task, bool include_result) {
    // Stored JSON members (params, metadata, result) were produced by this
    // service's own serializer, so they are copied in as they are.
    out += "{\"task_id\":";
    AppendString(out, task.task_id);
    out += ",\"type\":";
    AppendString(out, task.type);
    out += ",\"status\":\"";
    out += ToString(task.status);
    out += "\",\"params\":";
    out += task.params_json;
    out += ",\"text_bytes\":";
    out += std::to_string(task.text_bytes);
    out += ",\"attempts\":";
    out += std::to_string(task.attempts);
    out += ",\"max_attempts\":";
    out += std::to_string(task.max_attempts);
    out += ",\"created_at\":";
    AppendTimestamp(out, task.created_at);
    out += ",\"updated_at\":";
    AppendTimestamp(out, task.updated_at);
    out += ",\"started_at\":";
    AppendTimestamp(out, task.started_at);
    out += ",\"finished_at\":";
    AppendTimestamp(out, task.finished_at);
    out += ",\"next_attempt_at\":";
    AppendTimestamp(out, task.status == TaskStatus::kPending ? task.next_attempt_at : std::nullopt);
    if (include_result) {
        out += ",\"result\":";
        const bool has_result = task.status == TaskStatus::kCompleted && task.result_json;
        out += has_result ? *task.result_json : "null";
    }
    out += ",\"error\":";
    if (task.error) {
        out += "{\"code\":";
        AppendString(out, task.error->code);
        out += ",\"message\":";
        AppendString(out, task.error->message);
        out += "}";
    } else {
        out += "null";
    }
    if (task.metadata_json) {
        out += ",\"metadata\":";
        out += *task.metadata_json;
    }
    if (task.text) {
        out += ",\"text\":";
        AppendString(out, *task.text);
    }
    out += "}";
}

std::string TaskToJson(const Task& task, bool include_result) {
    std::string out;
    out.reserve(512 + (task.text ? task.text->size() + task.text->size() / 8 : 0));
    AppendTaskJson(out, task, include_result);
    return out;
}

}  // namespace conveyor::http
