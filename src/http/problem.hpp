#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tasks/task_type.hpp"

namespace conveyor::http {

// The machine-readable error codes of the API, each with one HTTP status.
enum class ErrorCode {
    kInvalidJson,
    kInvalidParameter,
    kInvalidCursor,
    kInvalidTaskId,
    kInvalidIdempotencyKey,
    kMalformedRequest,  // not valid HTTP/1.1: broken header syntax or body framing
    kUnauthorized,
    kNotFound,
    kTaskNotFound,
    kMethodNotAllowed,
    kTaskNotCancellable,
    kTaskNotRetryable,
    kPayloadTooLarge,
    kUnsupportedMediaType,
    kValidationFailed,
    kUnknownTaskType,
    kIdempotencyKeyReused,
    kRateLimited,
    kUnavailable,
    kHttpVersionNotSupported,
    kInternalError,
};

unsigned HttpStatusOf(ErrorCode code);
std::string_view CodeName(ErrorCode code);

// An error response on its way to the client: RFC 9457 problem details.
// `detail` is client text; it never carries SQL, paths or driver messages.
struct Problem {
    ErrorCode code = ErrorCode::kInternalError;
    std::string detail;
    std::vector<FieldIssue> errors;  // only for validation_failed
};

// Serializes as application/problem+json with type, title, status, detail,
// code and, when present, errors.
std::string ToJson(const Problem& problem);

}  // namespace conveyor::http
