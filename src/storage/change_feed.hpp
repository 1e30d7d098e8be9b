#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/duration.hpp"
#include "core/status.hpp"

namespace conveyor {

// A change to a task by any process (this one included), as announced by
// the database.
enum class ChangeKind {
    kSubmitted,  // new eligible work: a task was created, redriven or requeued
    kFinished,   // a task reached a terminal state
    kCancelled,  // a task was cancelled; workers running it should stop
};

struct Change {
    ChangeKind kind = ChangeKind::kSubmitted;
    std::string task_id;  // empty for kSubmitted, which may stand for many tasks
};

// A stream of changes made by every process that shares the database, so
// that idle workers and long polls wake at once instead of at their next
// poll. One thread owns a feed and calls Wait in a loop.
class ChangeFeed {
public:
    virtual ~ChangeFeed() = default;

    // Blocks until changes arrive, `timeout` passes (an empty vector), or
    // Interrupt is called. kUnavailable when the connection broke; the next
    // call reconnects, and changes made while it was down are lost, so the
    // caller must also poll now and then.
    virtual Result<std::vector<Change>> Wait(Millis timeout) = 0;

    // Makes a Wait in progress on another thread return soon. Thread-safe.
    virtual void Interrupt() = 0;
};

}  // namespace conveyor
