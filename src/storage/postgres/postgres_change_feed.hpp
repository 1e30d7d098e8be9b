#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/change_feed.hpp"

struct pg_conn;

namespace conveyor::postgres {

// Parses one notification payload of the change channel: "s", "f:<id>" or
// "c:<id>". Returns nullopt for anything else.
std::optional<Change> ParseChangePayload(std::string_view payload);

// A ChangeFeed on its own connection, which runs LISTEN on the change
// channel. The connection is opened without blocking (PQconnectStartParams)
// inside Wait, so Interrupt also cuts a connection attempt short. A lost
// connection makes Wait return kUnavailable, and each later Wait tries to
// connect and listen again. A connection attempt may span several Waits, up
// to 10 seconds in all, and a Wait whose timeout passes while it
// connects returns no changes.
//
// Wait and the destructor belong to one thread; Interrupt may come from
// any thread. An Interrupt with no Wait in progress makes the next Wait
// return at once, so a stop request is never missed.
class PostgresChangeFeed final : public ChangeFeed {
  public:
    // Returns nullptr when the interrupt descriptor (an eventfd) cannot be
    // created. Connects on the first Wait.
    static std::unique_ptr<PostgresChangeFeed> Create(std::string url);

    ~PostgresChangeFeed() override;
    PostgresChangeFeed(const PostgresChangeFeed&) = delete;
    PostgresChangeFeed& operator=(const PostgresChangeFeed&) = delete;

    Result<std::vector<Change>> Wait(Millis timeout) override;
    void Interrupt() override;

  private:
    using Clock = std::chrono::steady_clock;

    // The outcome of one poll() of the connection's socket and the eventfd.
    enum class Readiness { kSocket, kInterrupted, kTimedOut };

    PostgresChangeFeed(std::string url, int interrupt_fd);

    // Drives the connection attempt until it listens (true), or until the
    // deadline or an Interrupt (false, still connecting).
    Result<bool> Connect(Clock::time_point deadline);
    Status StartConnecting();
    Status Listen();
    // Reads every notification that has arrived, folding repeated
    // kSubmitted changes into one.
    std::vector<Change> TakeChanges();
    Result<Readiness> PollSocket(short events, Clock::time_point deadline);
    Status Disconnect(Status reason);

    const std::string url_;
    const std::string target_;  // host, port, database and user, for messages
    const int interrupt_fd_;
    pg_conn* conn_ = nullptr;
    bool listening_ = false;
    bool awaiting_write_ = true;  // the connection attempt waits to write, else to read
    Clock::time_point connect_started_;
};

}  // namespace conveyor::postgres
