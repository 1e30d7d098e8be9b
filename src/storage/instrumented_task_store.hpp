#pragma once

#include <memory>

#include "storage/task_store.hpp"

namespace conveyor {

// Wraps a TaskStore and counts, in metrics::Service(), the calls running at
// each moment (db_calls_in_flight) and the calls that fail with
// kUnavailable or kInternal (db_errors_*). kNotFound and kConflict are
// expected outcomes, not errors, and are not counted. Thread-safe as the wrapped
// store is.
std::unique_ptr<TaskStore> InstrumentTaskStore(std::unique_ptr<TaskStore> store);

}  // namespace conveyor
