#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/status.hpp"

struct pg_conn;
struct pg_result;

// A thin RAII layer over libpq: one connection, its prepared statements,
// parameters, results and transactions. None of these classes is
// thread-safe, so one thread at a time uses a connection.
//
// Every statement runs with binary results, so integers arrive as 8 bytes,
// bytea as its raw bytes and uuid as 16 bytes, with no text escaping. Text
// parameters go as text, and bytea parameters as binary.
namespace conveyor::postgres {

// How long a connection attempt may take, in seconds, unless the URL sets
// connect_timeout itself.
inline constexpr int kDefaultConnectTimeoutSeconds = 10;

// Maps a SQLSTATE to a Status, in one place for the whole backend:
// - class 08 (connection exception), 57P01..57P03 (administrator shutdown,
//   crash shutdown, cannot connect now), 53300 (too many connections) and
//   25006 (read-only transaction: a standby after a failover) are
//   kUnavailable;
// - 40001 and 40P01 (serialization failure, deadlock) are kUnavailable once
//   the caller has used up its retries;
// - 23505 (unique violation) is kConflict;
// - anything else, and an empty SQLSTATE, is kInternal.
// `context` names the operation. The message is for logs only: it may
// contain SQL and server text, so it never goes to a client.
Status ErrorStatus(std::string_view sqlstate, std::string_view context, std::string_view detail);

// Returns true for the SQLSTATEs after which the connection cannot be used
// again and must be replaced.
bool IsConnectionLoss(std::string_view sqlstate);

// Returns true for a serialization failure or a deadlock, after which the
// whole transaction can run again.
bool IsRetryable(std::string_view sqlstate);

// Returns the connection target of `url` for log lines: host, port, database
// and user, never the password. Returns "(unparsable URL)" when libpq
// rejects it.
std::string DescribeTarget(const std::string& url);

// The keyword and value arrays that every connection opens with: the URL
// as libpq's dbname, which libpq expands, between defaults that the URL may
// override (connect_timeout, TCP keepalives, application_name=conveyor)
// and settings that win over it (client_encoding UTF8).
class ConnectParameters {
  public:
    explicit ConnectParameters(std::string url);
    ConnectParameters(const ConnectParameters&) = delete;
    ConnectParameters& operator=(const ConnectParameters&) = delete;

    const char* const* keywords() const { return keywords_.data(); }
    const char* const* values() const { return values_.data(); }

  private:
    std::string url_;
    std::string connect_timeout_;
    std::vector<const char*> keywords_;
    std::vector<const char*> values_;
};

// Points libpq's notice messages at the debug log instead of stderr.
void RouteNoticesToLog(pg_conn* conn);

// Returns libpq's last error text for `conn` without its trailing newline.
std::string LastErrorMessage(pg_conn* conn);

// The parameters of one statement. Values are text unless added with
// Bytes, which sends them as binary bytea.
class Params {
  public:
    Params& Text(std::string_view value);
    Params& Int64(std::int64_t value);
    // Sends `value` as bytea without copying it, so it must outlive the call.
    Params& Bytes(std::string_view value);
    // Sends a copy of `value` as bytea.
    Params& OwnedBytes(std::string_view value);
    Params& Null();
    Params& OptionalText(const std::optional<std::string>& value);
    Params& OptionalInt64(std::optional<std::int64_t> value);
    // Sends a one-dimensional array literal, such as {"a","b"} for text[].
    Params& TextArray(const std::vector<std::string>& values);
    Params& Int64Array(const std::vector<std::int64_t>& values);

    int size() const { return static_cast<int>(values_.size()); }

  private:
    friend class Connection;
    friend struct ParamArrays;

    struct Value {
        std::string owned{};
        std::string_view borrowed{};
        bool is_borrowed = false;
        bool is_null = false;
        bool is_binary = false;
    };
    std::vector<Value> values_;
};

// The rows of one statement, in binary format.
class QueryResult {
  public:
    explicit QueryResult(pg_result* result);
    ~QueryResult();
    QueryResult(QueryResult&& other) noexcept;
    QueryResult& operator=(QueryResult&& other) noexcept;
    QueryResult(const QueryResult&) = delete;
    QueryResult& operator=(const QueryResult&) = delete;

    int rows() const;
    int columns() const;

    bool IsNull(int row, int column) const;
    // Reads a smallint, integer or bigint column.
    std::int64_t Int64(int row, int column) const;
    // Reads text and bytea byte for byte, and uuid in lower-case canonical
    // form.
    std::string Text(int row, int column) const;
    std::optional<std::string> OptionalText(int row, int column) const;
    std::optional<std::int64_t> OptionalInt64(int row, int column) const;

    // Returns the command tag, such as "COMMIT" or "UPDATE 3".
    std::string command_status() const;

  private:
    pg_result* result_;
};

// A statement that each connection prepares once, under `name`, on first
// use. Names must be unique across the backend.
struct Statement {
    std::string name;
    std::string sql;
};

// One connection to the server and the names it has prepared.
class Connection {
  public:
    // Connects to `url` (a postgresql:// URI or a key=value string), with
    // application_name=conveyor unless the URL sets one, client_encoding
    // UTF8, and TCP keepalives. kUnavailable when the server cannot be
    // reached or rejects the login.
    static Result<std::unique_ptr<Connection>> Open(const std::string& url);

    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Runs `statement`, preparing it first when this connection has not.
    Result<QueryResult> Execute(const Statement& statement, const Params& params);

    // Runs `sql` unprepared with `params`, for one-off statements such as
    // migrations and EXPLAIN.
    Result<QueryResult> ExecuteOnce(const std::string& sql, const Params& params = Params());

    // Runs parameterless SQL, which may hold several statements, and
    // returns the result of the last one. Unlike the other calls, its rows
    // are in text format, so read them only with Text.
    Result<QueryResult> ExecuteScript(const std::string& sql);

    // Returns false once the connection is lost. A lost connection stays
    // lost and must be replaced.
    bool usable() const;

    // Marks the connection lost, for a state it cannot be trusted in, such
    // as a failed ROLLBACK.
    void Discard() { lost_ = true; }

    // Checks an idle connection without a round trip: when the server has
    // closed it (a restart, an idle timeout), the socket is readable at end
    // of file, and this returns false. Call only between statements.
    bool CheckIdle();

    // Returns whether a statement failed with a serialization failure or a
    // deadlock since the last call, after which the whole transaction can
    // run again, and clears the flag.
    bool TakeRetryableFailure() { return std::exchange(retryable_failure_, false); }

    // Returns true outside any transaction block.
    bool idle_in_no_transaction() const;

  private:
    explicit Connection(pg_conn* conn) : conn_(conn) {}

    // Turns a result into a QueryResult, or into the Status of its error.
    Result<QueryResult> Check(pg_result* result, std::string_view context);

    pg_conn* conn_;
    std::unordered_set<std::string> prepared_;
    bool retryable_failure_ = false;
    bool lost_ = false;
};

// A transaction that rolls back in its destructor unless committed. A
// rollback that fails leaves the connection unusable, so the pool drops it.
class Transaction {
  public:
    explicit Transaction(Connection& connection) : connection_(connection) {}
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    // `begin_sql` is BEGIN or BEGIN with an isolation level and access mode.
    Status Begin(const std::string& begin_sql = "BEGIN");
    Status Commit();

  private:
    Connection& connection_;
    bool open_ = false;
};

}  // namespace conveyor::postgres
