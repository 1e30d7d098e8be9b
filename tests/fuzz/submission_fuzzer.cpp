// Fuzzes the POST /v1/tasks body parser and validator with the input as the
// body, once without and once with fault injection.

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.hpp"
#include "http/problem.hpp"
#include "http/submission.hpp"

namespace {

using conveyor::fuzz::Require;
using conveyor::http::ErrorCode;
using conveyor::http::ParseSubmission;
using conveyor::http::Problem;
using conveyor::http::Submission;
using conveyor::http::SubmissionLimits;

// Small enough that the fuzzer reaches payload_too_large.
constexpr std::int64_t kMaxTextBytes = 256;

bool ParsesAsJson(std::string_view text) {
    boost::json::error_code error;
    boost::json::parse(text, error);
    return !error;
}

void CheckProblem(const Problem& problem) {
    const bool known_code =
        problem.code == ErrorCode::kInvalidJson || problem.code == ErrorCode::kValidationFailed ||
        problem.code == ErrorCode::kUnknownTaskType || problem.code == ErrorCode::kPayloadTooLarge;
    Require(known_code, "a rejected body gets one of the four body error codes");
    Require(problem.errors.empty() == (problem.code != ErrorCode::kValidationFailed),
            "only validation_failed lists errors, and it always does");
    Require(!problem.detail.empty(), "a problem has a detail");
    Require(ParsesAsJson(conveyor::http::ToJson(problem)), "a problem serialises to JSON");
}

// Writes the submission back as a request body with every member explicit.
std::string Reserialise(const Submission& submission) {
    boost::json::object body;
    body["text"] = submission.text;
    body["type"] = submission.type;
    body["params"] = boost::json::parse(submission.params_json);
    body["max_attempts"] = submission.max_attempts;
    if (submission.metadata_json) {
        body["metadata"] = boost::json::parse(*submission.metadata_json);
    }
    return boost::json::serialize(body);
}

void CheckAccepted(std::string_view body, const Submission& submission,
                   const SubmissionLimits& limits) {
    Require(static_cast<std::int64_t>(submission.text.size()) <= limits.max_text_bytes,
            "an accepted text is within the limit");
    Require(submission.max_attempts >= 1 && submission.max_attempts <= 20,
            "max_attempts is from 1 to 20");
    Require(submission.type == "text.analyze", "the type is a known one");
    Require(!conveyor::http::FindDuplicateMember(body), "an accepted body repeats no member");
    Require(submission.request_hash == conveyor::http::CanonicalJsonHash(body),
            "request_hash is the body's canonical hash");

    // The same JSON value in Boost.JSON's own formatting, with its own
    // escapes, is the same request for idempotency.
    const std::string reformatted = boost::json::serialize(boost::json::parse(body));
    const auto reparsed = ParseSubmission(reformatted, limits);
    Require(std::holds_alternative<Submission>(reparsed), "the reformatted body is accepted");
    Require(std::get<Submission>(reparsed).request_hash == submission.request_hash,
            "formatting does not change request_hash");

    const auto again = ParseSubmission(Reserialise(submission), limits);
    Require(std::holds_alternative<Submission>(again), "a re-serialised submission is accepted");
    const auto& second = std::get<Submission>(again);
    Require(second.text == submission.text, "text survives re-serialisation");
    Require(second.type == submission.type, "type survives re-serialisation");
    Require(second.params_json == submission.params_json, "params survive re-serialisation");
    Require(second.metadata_json == submission.metadata_json, "metadata survives re-serialisation");
    Require(second.max_attempts == submission.max_attempts,
            "max_attempts survives re-serialisation");
}

void CheckBody(std::string_view body, bool fault_injection) {
    SubmissionLimits limits;
    limits.max_text_bytes = kMaxTextBytes;
    limits.fault_injection = fault_injection;
    const auto parsed = ParseSubmission(body, limits);
    if (const auto* problem = std::get_if<Problem>(&parsed)) {
        CheckProblem(*problem);
        return;
    }
    CheckAccepted(body, std::get<Submission>(parsed), limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    CheckBody(body, false);
    CheckBody(body, true);
    // Lone surrogate detection must never read past the end of the body.
    (void)conveyor::http::HasLoneSurrogateEscape(body);
    return 0;
}
