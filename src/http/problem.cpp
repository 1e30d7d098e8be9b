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
        case ErrorCode::kMalformedRequest:
            return {400, "malformed_request", "Malformed HTTP request"};
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
        case ErrorCode::kHttpVersionNotSupported:
            return {505, "http_version_not_supported", "HTTP version not supported"};
        case ErrorCode::kInternalError:
            return {500, "internal_error", "Internal error"};
    }
    return {500, "internal_error", "Internal error"};
}

// Returns the length of the well-formed UTF-8 sequence (RFC 3629) at the
// start of `text`. When it is ill-formed, returns minus the number of bytes
// that one U+FFFD replaces: its longest well-formed prefix, at least one.
int Utf8SequenceLength(std::string_view text) {
    const auto byte = [&text](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(0);
    if (lead < 0x80) {
        return 1;
    }
    int length = 0;
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        second_min = lead == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
        second_max = lead == 0xED ? 0x9F : 0xBF;  // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        second_min = lead == 0xF0 ? 0x90 : 0x80;  // no overlong forms
        second_max = lead == 0xF4 ? 0x8F : 0xBF;  // nothing past U+10FFFF
    } else {
        return -1;
    }
    for (int i = 1; i < length; ++i) {
        const auto index = static_cast<std::size_t>(i);
        const unsigned char low = i == 1 ? second_min : 0x80;
        const unsigned char high = i == 1 ? second_max : 0xBF;
        if (index >= text.size() || byte(index) < low || byte(index) > high) {
            return -i;
        }
    }
    return length;
}

// Replaces each ill-formed UTF-8 sequence of `text` with U+FFFD. A detail
// may quote request bytes, such as a percent-decoded query parameter name,
// and Boost.JSON writes string bytes unchecked, so without this a problem
// body could be invalid JSON.
std::string ToValidUtf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        const int length = Utf8SequenceLength(text);
        const auto consumed = static_cast<std::size_t>(length < 0 ? -length : length);
        if (length < 0) {
            out += "\xEF\xBF\xBD";
        } else {
            out.append(text.substr(0, consumed));
        }
        text.remove_prefix(consumed);
    }
    return out;
}

}  // namespace

unsigned HttpStatusOf(ErrorCode code) {
    return InfoOf(code).status;
}

std::string_view CodeName(ErrorCode code) {
    return InfoOf(code).name;
}

std::string ToJson(const Problem& problem) {
    const CodeInfo info = InfoOf(problem.code);
    boost::json::object body;
    body["type"] = "urn:conveyor:problem:" + std::string(info.name);
    body["title"] = info.title;
    body["status"] = info.status;
    body["detail"] = ToValidUtf8(problem.detail);
    body["code"] = info.name;
    if (!problem.errors.empty()) {
        boost::json::array errors;
        for (const FieldIssue& issue : problem.errors) {
            errors.push_back(boost::json::object{{"field", ToValidUtf8(issue.field)},
                                                 {"message", ToValidUtf8(issue.message)}});
        }
        body["errors"] = std::move(errors);
    }
    return boost::json::serialize(body);
}

}  // namespace conveyor::http
