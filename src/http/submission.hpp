#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "http/problem.hpp"

namespace conveyor::http {

// Limits on a submission, taken from the server's settings.
struct SubmissionLimits {
    std::int64_t max_text_bytes = 1'048'576;
    int default_max_attempts = 3;
    bool fault_injection = false;
};

// A validated POST /v1/tasks body.
struct Submission {
    std::string type;
    std::string params_json;  // effective parameters, defaults filled in
    std::optional<std::string> metadata_json;
    std::string text;
    int max_attempts = 3;
    std::string request_hash;  // digest of the body as a JSON value, for idempotency keys
};

// Parses and validates a submission body. Returns the problem to respond
// with when the body is not well-formed JSON (invalid_json), breaks the
// schema (validation_failed), names an unknown type (unknown_task_type) or
// has a text over the limit (payload_too_large). `request_hash` is filled
// in only with `with_hash`, as only a submission with an idempotency key
// needs it.
std::variant<Submission, Problem> ParseSubmission(std::string_view body,
                                                  const SubmissionLimits& limits,
                                                  bool with_hash = true);

// Returns a digest of `json_text` as a JSON value: member order and
// formatting do not change it. Precondition: `json_text` is valid JSON.
std::string CanonicalJsonHash(std::string_view json_text);

// Returns the first member name that appears twice in one object of
// `json_text`, or nullopt when there is none or the text is not JSON.
std::optional<std::string> FindDuplicateMember(std::string_view json_text);

// Returns true when `body` contains a \u escape of a UTF-16 surrogate that
// is not part of a valid pair.
bool HasLoneSurrogateEscape(std::string_view body);

}  // namespace conveyor::http
