#pragma once

#include <optional>
#include <string>
#include <utility>

namespace conveyor {

// The error categories used inside the service. Storage backends map their
// native errors onto these; the HTTP layer maps these onto statuses.
enum class StatusCode {
    kOk,
    kInvalidArgument,
    kNotFound,
    kConflict,
    kUnavailable,
    kDeadlineExceeded,
    kInternal,
};

// The outcome of an operation that returns no value. The message is meant
// for logs: it may name files or SQL and never goes to a client.
class [[nodiscard]] Status {
public:
    Status() = default;

    static Status Ok() { return Status(); }
    static Status InvalidArgument(std::string message) {
        return Status(StatusCode::kInvalidArgument, std::move(message));
    }
    static Status NotFound(std::string message) {
        return Status(StatusCode::kNotFound, std::move(message));
    }
    static Status Conflict(std::string message) {
        return Status(StatusCode::kConflict, std::move(message));
    }
    static Status Unavailable(std::string message) {
        return Status(StatusCode::kUnavailable, std::move(message));
    }
    static Status DeadlineExceeded(std::string message) {
        return Status(StatusCode::kDeadlineExceeded, std::move(message));
    }
    static Status Internal(std::string message) {
        return Status(StatusCode::kInternal, std::move(message));
    }

    bool ok() const { return code_ == StatusCode::kOk; }
    StatusCode code() const { return code_; }
    const std::string& message() const { return message_; }

private:
    Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

    StatusCode code_ = StatusCode::kOk;
    std::string message_;
};

// A value of type T or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
    Result(Status status) : status_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

    bool ok() const { return value_.has_value(); }
    const Status& status() const { return status_; }

    T& value() & { return *value_; }
    const T& value() const& { return *value_; }
    T&& value() && { return std::move(*value_); }

    T* operator->() { return &*value_; }
    const T* operator->() const { return &*value_; }
    T& operator*() & { return *value_; }
    const T& operator*() const& { return *value_; }

private:
    std::optional<T> value_;
    Status status_;
};

}  // namespace conveyor
