#include "http/submission.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <set>

#include "core/crypto.hpp"

namespace conveyor::http {
namespace {

constexpr std::size_t kMaxMetadataEntries = 16;
constexpr std::size_t kMaxMetadataKeyChars = 64;
constexpr std::size_t kMaxMetadataValueChars = 256;
constexpr int kMaxAttemptsLimit = 20;

std::size_t CountCodePoints(std::string_view utf8) {
    return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

// Writes `value` with object members sorted by key, so that equal JSON
// values give equal text.
void AppendCanonical(std::string& out, const boost::json::value& value) {
    switch (value.kind()) {
        case boost::json::kind::object: {
            const auto& object = value.get_object();
            std::vector<const boost::json::key_value_pair*> members;
            members.reserve(object.size());
            for (const auto& member : object) {
                members.push_back(&member);
            }
            std::sort(members.begin(), members.end(),
                      [](const auto* a, const auto* b) { return a->key() < b->key(); });
            out.push_back('{');
            for (std::size_t i = 0; i < members.size(); ++i) {
                if (i > 0) {
                    out.push_back(',');
                }
                out += boost::json::serialize(boost::json::value(members[i]->key()));
                out.push_back(':');
                AppendCanonical(out, members[i]->value());
            }
            out.push_back('}');
            return;
        }
        case boost::json::kind::array: {
            out.push_back('[');
            bool first = true;
            for (const auto& element : value.get_array()) {
                if (!first) {
                    out.push_back(',');
                }
                first = false;
                AppendCanonical(out, element);
            }
            out.push_back(']');
            return;
        }
        case boost::json::kind::double_: {
            // 3.0 and 3 are one number in JSON.
            const double number = value.get_double();
            if (number == static_cast<double>(static_cast<std::int64_t>(number)) &&
                number > -9.0e18 && number < 9.0e18) {
                out += std::to_string(static_cast<std::int64_t>(number));
                return;
            }
            out += boost::json::serialize(value);
            return;
        }
        default:
            out += boost::json::serialize(value);
    }
}

std::optional<int> ReadSmallInteger(const boost::json::value& value) {
    if (value.is_int64() && value.get_int64() >= INT32_MIN && value.get_int64() <= INT32_MAX) {
        return static_cast<int>(value.get_int64());
    }
    return std::nullopt;
}

void ValidateMetadata(const boost::json::value& value, Submission& submission,
                      std::vector<FieldIssue>& issues) {
    if (!value.is_object()) {
        issues.push_back({"metadata", "must be an object of string values"});
        return;
    }
    const auto& object = value.get_object();
    if (object.size() > kMaxMetadataEntries) {
        issues.push_back({"metadata", "must have at most 16 entries"});
    }
    for (const auto& [key, entry] : object) {
        const std::string field = "metadata." + std::string(key);
        const std::size_t key_chars = CountCodePoints(key);
        if (key_chars < 1 || key_chars > kMaxMetadataKeyChars) {
            issues.push_back({field, "keys must be 1 to 64 characters long"});
        }
        if (!entry.is_string()) {
            issues.push_back({field, "must be a string"});
        } else if (CountCodePoints(entry.get_string()) > kMaxMetadataValueChars) {
            issues.push_back({field, "must be at most 256 characters long"});
        }
    }
    submission.metadata_json = boost::json::serialize(value);
}

// Returns the code unit of the \uXXXX escape at `pos` of `body`, or -1 when
// there is none.
int ReadUnicodeEscape(std::string_view body, std::size_t pos) {
    if (pos + 6 > body.size() || body[pos] != '\\' || body[pos + 1] != 'u') {
        return -1;
    }
    int unit = 0;
    for (std::size_t i = pos + 2; i < pos + 6; ++i) {
        const char c = body[i];
        const int digit = (c >= '0' && c <= '9')   ? c - '0'
                          : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                          : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                   : -1;
        if (digit < 0) {
            return -1;
        }
        unit = unit * 16 + digit;
    }
    return unit;
}

// Returns the offsets of the \u escapes in `body` that encode a UTF-16
// surrogate outside a valid pair.
std::vector<std::size_t> LoneSurrogateEscapes(std::string_view body) {
    std::vector<std::size_t> offsets;
    for (std::size_t pos = 0; pos < body.size(); ++pos) {
        if (body[pos] != '\\') {
            continue;
        }
        const int unit = ReadUnicodeEscape(body, pos);
        if (unit < 0) {
            ++pos;  // skip the escaped character, which may be a backslash
            continue;
        }
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            const int next = ReadUnicodeEscape(body, pos + 6);
            if (next >= 0xDC00 && next <= 0xDFFF) {
                pos += 11;
                continue;
            }
            offsets.push_back(pos);
        } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
            offsets.push_back(pos);
        }
        pos += 5;
    }
    return offsets;
}

// Returns true when `body` parses once each escape at `offsets` is replaced
// by \ufffd, an escape of the same length. The parser rejects lone
// surrogates, so this separates a body that is otherwise well-formed JSON
// from one that is also broken elsewhere.
bool ParsesWithEscapesReplaced(std::string_view body, const std::vector<std::size_t>& offsets) {
    std::string patched(body);
    for (const std::size_t offset : offsets) {
        patched.replace(offset, 6, "\\ufffd");
    }
    boost::json::error_code error;
    boost::json::parse(patched, error);
    return !error;
}

// A basic_parser handler that records the member names of each open
// object and stops at the first name that repeats.
class DuplicateMemberFinder {
  public:
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    bool on_document_begin(boost::json::error_code&) { return true; }
    bool on_document_end(boost::json::error_code&) { return true; }
    bool on_array_begin(boost::json::error_code&) { return true; }
    bool on_array_end(std::size_t, boost::json::error_code&) { return true; }
    bool on_object_begin(boost::json::error_code&) {
        open_objects_.emplace_back();
        return true;
    }
    bool on_object_end(std::size_t, boost::json::error_code&) {
        open_objects_.pop_back();
        return true;
    }
    bool on_string_part(boost::json::string_view, std::size_t, boost::json::error_code&) {
        return true;
    }
    bool on_string(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
    bool on_key_part(boost::json::string_view part, std::size_t, boost::json::error_code&) {
        key_.append(part.data(), part.size());
        return true;
    }
    bool on_key(boost::json::string_view part, std::size_t, boost::json::error_code& error) {
        key_.append(part.data(), part.size());
        if (!open_objects_.back().insert(key_).second) {
            duplicate_ = key_;
            error = boost::json::error::syntax;
            return false;
        }
        key_.clear();
        return true;
    }
    bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_int64(std::int64_t, boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_uint64(std::uint64_t, boost::json::string_view, boost::json::error_code&) {
        return true;
    }
    bool on_double(double, boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_bool(bool, boost::json::error_code&) { return true; }
    bool on_null(boost::json::error_code&) { return true; }
    bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

    const std::optional<std::string>& duplicate() const { return duplicate_; }

  private:
    std::vector<std::set<std::string, std::less<>>> open_objects_;
    std::string key_;
    std::optional<std::string> duplicate_;
};

}  // namespace

std::optional<std::string> FindDuplicateMember(std::string_view json_text) {
    boost::json::basic_parser<DuplicateMemberFinder> parser(boost::json::parse_options{});
    boost::json::error_code error;
    parser.write_some(false, json_text.data(), json_text.size(), error);
    return parser.handler().duplicate();
}

bool HasLoneSurrogateEscape(std::string_view body) {
    return !LoneSurrogateEscapes(body).empty();
}

std::string CanonicalJsonHash(std::string_view json_text) {
    std::string canonical;
    AppendCanonical(canonical, boost::json::parse(json_text));
    return HexEncode(Sha256(canonical));
}

std::variant<Submission, Problem> ParseSubmission(std::string_view body,
                                                  const SubmissionLimits& limits, bool with_hash) {
    boost::json::error_code error;
    boost::json::value root = boost::json::parse(body, error);
    if (error) {
        const std::vector<std::size_t> lone_escapes = LoneSurrogateEscapes(body);
        if (!lone_escapes.empty() && ParsesWithEscapesReplaced(body, lone_escapes)) {
            return Problem{ErrorCode::kValidationFailed,
                           "The body contains a lone UTF-16 surrogate escape, which is not "
                           "a Unicode character.",
                           {{"text", "must be a string of Unicode characters"}}};
        }
        return Problem{ErrorCode::kInvalidJson,
                       "The body is not well-formed JSON in UTF-8: " + error.message() + ".",
                       {}};
    }
    if (!root.is_object()) {
        return Problem{ErrorCode::kInvalidJson, "The body must be a JSON object.", {}};
    }
    // Boost.JSON keeps the last of repeated members; the request is rejected
    // instead, so that what is stored and echoed is exactly what was sent.
    if (const auto duplicate = FindDuplicateMember(body)) {
        return Problem{ErrorCode::kInvalidJson,
                       "The member \"" + *duplicate + "\" appears more than once in one object.",
                       {}};
    }
    const auto& object = root.get_object();

    Submission submission;
    submission.max_attempts = limits.default_max_attempts;
    std::vector<FieldIssue> issues;
    const TaskType* task_type = FindTaskType("text.analyze");
    boost::json::object params;

    for (const auto& [key, value] : object) {
        if (key == "text") {
            if (!value.is_string()) {
                issues.push_back({"text", "must be a string"});
            } else {
                submission.text = std::string(value.get_string());
            }
        } else if (key == "type") {
            if (!value.is_string()) {
                issues.push_back({"type", "must be a string"});
            } else {
                task_type = FindTaskType(value.get_string());
                if (task_type == nullptr) {
                    return Problem{ErrorCode::kUnknownTaskType,
                                   "Unknown task type \"" + std::string(value.get_string()) +
                                       "\". Known types: text.analyze.",
                                   {}};
                }
            }
        } else if (key == "params") {
            if (!value.is_object()) {
                issues.push_back({"params", "must be an object"});
            } else {
                params = value.get_object();
            }
        } else if (key == "max_attempts") {
            const auto number = ReadSmallInteger(value);
            if (!number || *number < 1 || *number > kMaxAttemptsLimit) {
                issues.push_back({"max_attempts", "must be an integer from 1 to 20"});
            } else {
                submission.max_attempts = *number;
            }
        } else if (key == "metadata") {
            ValidateMetadata(value, submission, issues);
        } else {
            issues.push_back({std::string(key), "is not a known member"});
        }
    }
    if (!object.contains("text")) {
        issues.push_back({"text", "is required"});
    }

    // Fault-injection keys are kept in the stored parameters so that every
    // worker process reads them.
    boost::json::object fault_members;
    if (limits.fault_injection) {
        for (const std::string_view fault_key : {"fail_attempts", "fail_permanently", "delay_ms"}) {
            if (const auto* fault_value = params.if_contains(fault_key)) {
                fault_members[fault_key] = *fault_value;
            }
        }
    }
    ExtractFaultInjection(params, limits.fault_injection, issues);
    auto effective = task_type->NormalizeParams(params, issues);
    if (!issues.empty()) {
        return Problem{ErrorCode::kValidationFailed, "The task submission is not valid.",
                       std::move(issues)};
    }
    if (static_cast<std::int64_t>(submission.text.size()) > limits.max_text_bytes) {
        return Problem{ErrorCode::kPayloadTooLarge,
                       "The text is " + std::to_string(submission.text.size()) +
                           " bytes of UTF-8; the limit is " +
                           std::to_string(limits.max_text_bytes) + " bytes.",
                       {}};
    }
    for (auto& [fault_key, fault_value] : fault_members) {
        (*effective)[fault_key] = fault_value;
    }
    submission.type = std::string(task_type->Name());
    submission.params_json = boost::json::serialize(*effective);
    if (with_hash) {
        std::string canonical;
        AppendCanonical(canonical, root);
        submission.request_hash = HexEncode(Sha256(canonical));
    }
    return submission;
}

}  // namespace conveyor::http
