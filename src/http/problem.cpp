#include "http/problem.hpp"

#include <boost/json.hpp>

namespace conveyor::http {
namespace {

struct CodeInfo {
    unsigned status;
    std::string_view name;
    std::string_view title;
};

CodeInfo InfoOf(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInvalidJson:
            return {400, "invalid_json", "Invalid JSON"};
        case ErrorCode::kInvalidParameter:
            return {400, "invalid_parameter", "Invalid query parameter"};
        case ErrorCode::kInvalidCursor:
            return {400, "invalid_cursor", "Invalid cursor"};
        case ErrorCode::kInvalidTaskId:
            return {400, "invalid_task_id", "Invalid task id"};
        case ErrorCode::kInvalidIdempotencyKey:
            return {400, "invalid_idempotency_key", "Invalid idempotency key"};
        case ErrorCode::kUnauthorized:
            return {401, "unauthorized", "Unauthorized"};
        case ErrorCode::kNotFound:
            return {404, "not_found", "Not found"};
        case ErrorCode::kTaskNotFound:
            return {404, "task_not_found", "Task not found"};
        case ErrorCode::kMethodNotAllowed:
            return {405, "method_not_allowed", "Method not allowed"};
        case ErrorCode::kTaskNotCancellable:
            return {409, "task_not_cancellable", "Task not cancellable"};
        case ErrorCode::kTaskNotRetryable:
            return {409, "task_not_retryable", "Task not retryable"};
        case ErrorCode::kPayloadTooLarge:
            return {413, "payload_too_large", "Payload too large"};
        case ErrorCode::kUnsupportedMediaType:
            return {415, "unsupported_media_type", "Unsupported media type"};
        case ErrorCode::kValidationFailed:
            return {422, "validation_failed", "Validation failed"};
        case ErrorCode::kUnknownTaskType:
            return {422, "unknown_task_type", "Unknown task type"};
        case ErrorCode::kIdempotencyKeyReused:
            return {422, "idempotency_key_reused", "Idempotency key reused"};
        case ErrorCode::kRateLimited:
            return {429, "rate_limited", "Rate limited"};
        case ErrorCode::kUnavailable:
            return {503, "unavailable", "Service unavailable"};
        case ErrorCode::kInternalError:
            return {500, "internal_error", "Internal error"};
    }
    return {500, "internal_error", "Internal error"};
}

}  // namespace

unsigned HttpStatusOf(ErrorCode code) { return InfoOf(code).status; }

std::string_view CodeName(ErrorCode code) { return InfoOf(code).name; }

std::string ToJson(const Problem& problem) {
    const CodeInfo info = InfoOf(problem.code);
    boost::json::object body;
    body["type"] = "urn:conveyor:problem:" + std::string(info.name);
    body["title"] = info.title;
    body["status"] = info.status;
    body["detail"] = problem.detail;
    body["code"] = info.name;
    if (!problem.errors.empty()) {
        boost::json::array errors;
        for (const FieldIssue& issue : problem.errors) {
            errors.push_back(boost::json::object{{"field", issue.field}, {"message", issue.message}});
        }
        body["errors"] = std::move(errors);
    }
    return boost::json::serialize(body);
}

}  // namespace conveyor::http
