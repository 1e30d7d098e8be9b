#include "storage/postgres/postgres_change_feed.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/log.hpp"
#include "storage/postgres/postgres_connection.hpp"
#include "storage/postgres/postgres_statements.hpp"

namespace conveyor::postgres {
namespace {

constexpr auto kConnectLimit = std::chrono::seconds(kDefaultConnectTimeoutSeconds);

int RemainingMillis(std::chrono::steady_clock::time_point deadline) {
    const auto remaining =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::clamp<std::int64_t>(remaining.count(), 0, INT_MAX));
}

}  // namespace

std::optional<Change> ParseChangePayload(std::string_view payload) {
    if (payload == "s") {
        return Change{ChangeKind::kSubmitted, ""};
    }
    if (payload.size() > 2 && payload.starts_with("f:")) {
        return Change{ChangeKind::kFinished, std::string(payload.substr(2))};
    }
    if (payload.size() > 2 && payload.starts_with("c:")) {
        return Change{ChangeKind::kCancelled, std::string(payload.substr(2))};
    }
    return std::nullopt;
}

std::unique_ptr<PostgresChangeFeed> PostgresChangeFeed::Create(std::string url) {
    const int interrupt_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (interrupt_fd < 0) {
        log::Warn("postgres", "cannot create an eventfd for the change feed; polling instead",
                  {{"error", std::strerror(errno)}});
        return nullptr;
    }
    return std::unique_ptr<PostgresChangeFeed>(
        new PostgresChangeFeed(std::move(url), interrupt_fd));
}

PostgresChangeFeed::PostgresChangeFeed(std::string url, int interrupt_fd)
    : url_(std::move(url)), target_(DescribeTarget(url_)), interrupt_fd_(interrupt_fd) {}

PostgresChangeFeed::~PostgresChangeFeed() {
    if (conn_ != nullptr) {
        PQfinish(conn_);
    }
    close(interrupt_fd_);
}

void PostgresChangeFeed::Interrupt() {
    const std::uint64_t increment = 1;
    // A full counter (EAGAIN) already means an interrupt is pending.
    [[maybe_unused]] const ssize_t written = write(interrupt_fd_, &increment, sizeof(increment));
}

Result<std::vector<Change>> PostgresChangeFeed::Wait(Millis timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    if (!listening_) {
        Result<bool> ready = Connect(deadline);
        if (!ready.ok()) {
            return ready.status();
        }
        if (!*ready) {
            return std::vector<Change>();
        }
    }

    // Each pass returns or waits in poll() until the deadline, so the loop
    // ends by the deadline at the latest.
    while (true) {
        std::vector<Change> changes = TakeChanges();
        if (!changes.empty()) {
            return changes;
        }
        Result<Readiness> readiness = PollSocket(POLLIN, deadline);
        if (!readiness.ok()) {
            return Disconnect(readiness.status());
        }
        if (*readiness != Readiness::kSocket) {
            return std::vector<Change>();
        }
        if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK) {
            return Disconnect(Status::Unavailable("the change feed connection to " + target_ +
                                                  " was lost: " + LastErrorMessage(conn_)));
        }
    }
}

Result<bool> PostgresChangeFeed::Connect(Clock::time_point deadline) {
    if (conn_ == nullptr) {
        if (Status status = StartConnecting(); !status.ok()) {
            return status;
        }
    }
    const Clock::time_point give_up = connect_started_ + kConnectLimit;
    // Each pass waits in poll() for the socket, so the loop ends by the
    // earlier of the deadline and the connect limit.
    while (true) {
        Result<Readiness> readiness =
            PollSocket(awaiting_write_ ? POLLOUT : POLLIN, std::min(deadline, give_up));
        if (!readiness.ok()) {
            return Disconnect(readiness.status());
        }
        if (*readiness == Readiness::kInterrupted) {
            return false;
        }
        if (*readiness == Readiness::kTimedOut) {
            if (Clock::now() < give_up) {
                return false;
            }
            return Disconnect(
                Status::Unavailable("connecting the change feed to " + target_ + " timed out"));
        }
        switch (PQconnectPoll(conn_)) {
            case PGRES_POLLING_READING:
                awaiting_write_ = false;
                break;
            case PGRES_POLLING_WRITING:
                awaiting_write_ = true;
                break;
            case PGRES_POLLING_OK:
                if (Status status = Listen(); !status.ok()) {
                    return Disconnect(std::move(status));
                }
                return true;
            default:
                return Disconnect(Status::Unavailable("cannot connect the change feed to " +
                                                      target_ + ": " + LastErrorMessage(conn_)));
        }
    }
}

Status PostgresChangeFeed::StartConnecting() {
    const ConnectParameters parameters(url_);
    conn_ = PQconnectStartParams(parameters.keywords(), parameters.values(), 1);
    if (conn_ == nullptr) {
        return Status::Unavailable("libpq could not allocate a connection");
    }
    if (PQstatus(conn_) == CONNECTION_BAD) {
        return Disconnect(Status::Unavailable("cannot connect the change feed to " + target_ +
                                              ": " + LastErrorMessage(conn_)));
    }
    connect_started_ = Clock::now();
    // libpq's protocol: before the first PQconnectPoll, wait to write.
    awaiting_write_ = true;
    return Status::Ok();
}

Status PostgresChangeFeed::Listen() {
    RouteNoticesToLog(conn_);
    const std::string sql = std::string("LISTEN ") + kChangeChannel;
    PGresult* result = PQexec(conn_, sql.c_str());
    const bool listening = PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    if (!listening) {
        return Status::Unavailable("LISTEN on " + target_ + " failed: " + LastErrorMessage(conn_));
    }
    listening_ = true;
    log::Info("postgres", "change feed listening", {{"target", target_}});
    return Status::Ok();
}

std::vector<Change> PostgresChangeFeed::TakeChanges() {
    std::vector<Change> changes;
    bool submitted = false;
    while (PGnotify* notify = PQnotifies(conn_)) {
        std::optional<Change> change;
        if (std::string_view(notify->relname) == kChangeChannel) {
            change = ParseChangePayload(notify->extra);
        }
        PQfreemem(notify);
        if (!change || (change->kind == ChangeKind::kSubmitted && submitted)) {
            continue;
        }
        submitted = submitted || change->kind == ChangeKind::kSubmitted;
        changes.push_back(std::move(*change));
    }
    return changes;
}

Result<PostgresChangeFeed::Readiness> PostgresChangeFeed::PollSocket(short events,
                                                                     Clock::time_point deadline) {
    const int socket = PQsocket(conn_);
    if (socket < 0) {
        return Status::Unavailable("the change feed connection to " + target_ + " has no socket");
    }
    pollfd entries[2] = {{.fd = socket, .events = events, .revents = 0},
                         {.fd = interrupt_fd_, .events = POLLIN, .revents = 0}};
    int ready = poll(entries, 2, RemainingMillis(deadline));
    // A signal handler interrupts poll(); the remaining time shrinks on each
    // pass, so this ends by the deadline.
    while (ready < 0 && errno == EINTR) {
        ready = poll(entries, 2, RemainingMillis(deadline));
    }
    if (ready < 0) {
        return Status::Unavailable(std::string("poll() on the change feed failed: ") +
                                   std::strerror(errno));
    }
    if ((entries[1].revents & POLLIN) != 0) {
        std::uint64_t count = 0;
        [[maybe_unused]] const ssize_t read_bytes = read(interrupt_fd_, &count, sizeof(count));
        return Readiness::kInterrupted;
    }
    if (entries[0].revents != 0) {
        return Readiness::kSocket;
    }
    return Readiness::kTimedOut;
}

Status PostgresChangeFeed::Disconnect(Status reason) {
    if (conn_ != nullptr) {
        PQfinish(conn_);
        conn_ = nullptr;
    }
    listening_ = false;
    return reason;
}

}  // namespace conveyor::postgres
