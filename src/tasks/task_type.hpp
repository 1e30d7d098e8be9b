#pragma once

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/task.hpp"

namespace conveyor {

// One problem with a submitted field, reported in a validation_failed response.
struct FieldIssue {
    std::string field;  // dotted path, e.g. "params.top_n"
    std::string message;
};

// The outcome of one attempt at running a task.
struct RunOutcome {
    std::optional<std::string> result_json;  // set on success
    std::optional<TaskError> error;          // set on failure
    bool retryable = false;                  // whether the failure may be retried
};

// Settings for tests that make tasks fail on purpose. They are accepted in
// `params` only when the server runs with --enable-fault-injection.
struct FaultInjection {
    int fail_attempts = 0;        // the first N attempts fail with injected_failure
    bool fail_permanently = false; // fail with non-retryable invalid_input
    std::optional<std::int64_t> delay_ms;  // replaces --simulated-delay
};

// A kind of work that tasks can name in `type`. Implementations are
// stateless and thread-safe.
class TaskType {
public:
    virtual ~TaskType() = default;

    virtual std::string_view Name() const = 0;

    // Checks the type's own members of `params` (fault-injection keys are
    // already removed) and returns the effective parameters with defaults
    // filled in, as a JSON object. Appends to `issues` and returns nullopt
    // when anything is wrong.
    virtual std::optional<boost::json::object> NormalizeParams(
        const boost::json::object& params, std::vector<FieldIssue>& issues) const = 0;

    // Does the work on the calling thread. `params` is what NormalizeParams
    // returned, as stored.
    virtual RunOutcome Run(const boost::json::object& params, std::string_view text) const = 0;
};

// Returns the registered type called `name`, or nullptr.
const TaskType* FindTaskType(std::string_view name);

// Removes the fault-injection members from `params` and returns them.
// With `enabled` false they stay in place, so the type's validation rejects
// them as unknown. Appends to `issues` for out-of-range values.
FaultInjection ExtractFaultInjection(boost::json::object& params, bool enabled,
                                     std::vector<FieldIssue>& issues);

// Reads the fault-injection members back from stored parameters.
FaultInjection ReadFaultInjection(const boost::json::object& params);

// Returns `params` without the fault-injection members.
boost::json::object WithoutFaultInjection(const boost::json::object& params);

}  // namespace conveyor
