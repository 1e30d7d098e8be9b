#include "tasks/task_type.hpp"

#include <array>

namespace conveyor {

const TaskType& TextAnalyzeTaskType();  // defined in text_analyze.cpp

namespace {

constexpr int kMaxFailAttempts = 20;
constexpr std::int64_t kMaxDelayMs = 600'000;
constexpr std::array<std::string_view, 3> kFaultKeys = {"fail_attempts", "fail_permanently",
                                                        "delay_ms"};

std::optional<std::int64_t> ReadInteger(const boost::json::value& value) {
    if (value.is_int64()) {
        return value.get_int64();
    }
    if (value.is_uint64() && value.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
        return static_cast<std::int64_t>(value.get_uint64());
    }
    return std::nullopt;
}

}  // namespace

const TaskType* FindTaskType(std::string_view name) {
    const TaskType& text_analyze = TextAnalyzeTaskType();
    if (name == text_analyze.Name()) {
        return &text_analyze;
    }
    return nullptr;
}

FaultInjection ExtractFaultInjection(boost::json::object& params, bool enabled,
                                     std::vector<FieldIssue>& issues) {
    FaultInjection fault;
    if (!enabled) {
        return fault;
    }
    if (const auto* value = params.if_contains("fail_attempts")) {
        const auto number = ReadInteger(*value);
        if (!number || *number < 0 || *number > kMaxFailAttempts) {
            issues.push_back({"params.fail_attempts", "must be an integer from 0 to 20"});
        } else {
            fault.fail_attempts = static_cast<int>(*number);
        }
        params.erase("fail_attempts");
    }
    if (const auto* value = params.if_contains("fail_permanently")) {
        if (!value->is_bool()) {
            issues.push_back({"params.fail_permanently", "must be true or false"});
        } else {
            fault.fail_permanently = value->get_bool();
        }
        params.erase("fail_permanently");
    }
    if (const auto* value = params.if_contains("delay_ms")) {
        const auto number = ReadInteger(*value);
        if (!number || *number < 0 || *number > kMaxDelayMs) {
            issues.push_back({"params.delay_ms", "must be an integer from 0 to 600000"});
        } else {
            fault.delay_ms = *number;
        }
        params.erase("delay_ms");
    }
    return fault;
}

FaultInjection ReadFaultInjection(const boost::json::object& params) {
    FaultInjection fault;
    if (const auto* value = params.if_contains("fail_attempts")) {
        fault.fail_attempts = static_cast<int>(ReadInteger(*value).value_or(0));
    }
    if (const auto* value = params.if_contains("fail_permanently"); value && value->is_bool()) {
        fault.fail_permanently = value->get_bool();
    }
    if (const auto* value = params.if_contains("delay_ms")) {
        fault.delay_ms = ReadInteger(*value);
    }
    return fault;
}

boost::json::object WithoutFaultInjection(const boost::json::object& params) {
    boost::json::object copy = params;
    for (const std::string_view key : kFaultKeys) {
        copy.erase(key);
    }
    return copy;
}

}  // namespace conveyor
