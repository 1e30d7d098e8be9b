#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/duration.hpp"
#include "core/status.hpp"

struct sqlite3;
struct sqlite3_stmt;

// A thin RAII layer over the SQLite C API: one connection, its cached
// prepared statements and transactions. None of these classes is
// thread-safe, so one thread at a time uses a connection and its statements.
namespace conveyor::sqlite {

// Maps a SQLite result code to a Status. Conditions that can pass are
// kUnavailable: a busy or locked database (after the busy timeout), a file
// that cannot be opened, an I/O error and a full disk. Every other code is
// kInternal. `context` names the operation and may contain SQL or a file
// path, so the message is for logs only.
Status ErrorStatus(int code, std::string_view context, std::string_view detail);

// A prepared statement. Binding and reading use 1-based parameter indexes
// and 0-based column indexes, as the C API does.
class Statement {
  public:
    explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    void BindInt64(int index, std::int64_t value);
    void BindText(int index, std::string_view value);
    // Binds bytes as a BLOB with an explicit length, so NUL bytes survive.
    void BindBlob(int index, std::string_view value);
    void BindNull(int index);
    void BindOptionalText(int index, const std::optional<std::string>& value);
    void BindOptionalInt64(int index, std::optional<std::int64_t> value);

    // Advances to the next row: true for a row, false when the statement is
    // done. A failed bind earlier is reported here.
    Result<bool> Step();

    // Steps to the end, discarding any rows.
    Status Run();

    // Returns the extended result code of the last failed step, or 0, so a
    // caller can tell a constraint violation from other failures.
    int failed_code() const { return failed_code_; }

    bool ColumnIsNull(int column) const;
    std::int64_t ColumnInt64(int column) const;
    std::string ColumnText(int column) const;
    // Reads a TEXT or BLOB column byte for byte, NUL bytes included.
    std::string ColumnBytes(int column) const;
    std::optional<std::string> ColumnOptionalText(int column) const;
    std::optional<std::int64_t> ColumnOptionalInt64(int column) const;

    // Ends the current run and clears every binding, ready for reuse.
    void Reset();

    // Returns the statement's SQL, shortened for error messages.
    std::string SqlForMessage() const;

  private:
    void RecordBindError(int code, int index);

    sqlite3_stmt* stmt_;
    int bind_error_ = 0;
    int bind_error_index_ = 0;
    int failed_code_ = 0;
};

// A cached statement on loan. Its destructor resets the statement, which
// also ends the read transaction of an unfinished SELECT.
class StatementHandle {
  public:
    explicit StatementHandle(Statement* statement) : statement_(statement) {}
    ~StatementHandle();
    StatementHandle(StatementHandle&& other) noexcept : statement_(other.statement_) {
        other.statement_ = nullptr;
    }
    StatementHandle& operator=(StatementHandle&&) = delete;
    StatementHandle(const StatementHandle&) = delete;
    StatementHandle& operator=(const StatementHandle&) = delete;

    Statement* operator->() { return statement_; }
    Statement& operator*() { return *statement_; }

  private:
    Statement* statement_;
};

struct ConnectionOptions {
    Millis busy_timeout{5000};
    bool create = false;     // create the file when it is missing
    bool read_only = false;  // reject writes on this connection (PRAGMA query_only)
};

// One open database connection with a cache of prepared statements keyed by
// their SQL text.
class Connection {
  public:
    // Opens `path` and sets the busy timeout, foreign keys and, for a
    // writable connection, WAL mode with synchronous=FULL. kUnavailable when
    // the file cannot be opened.
    static Result<std::unique_ptr<Connection>> Open(const std::string& path,
                                                    const ConnectionOptions& options);

    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Runs one or more statements without parameters.
    Status Execute(std::string_view sql);

    // Returns the cached statement for `sql`, preparing it on first use. A
    // statement must not be borrowed twice at once.
    Result<StatementHandle> Prepare(const std::string& sql);

    // Returns the number of rows the last INSERT, UPDATE or DELETE changed.
    int Changes() const;
    std::int64_t LastInsertRowId() const;
    bool InTransaction() const;

    const std::string& path() const { return path_; }

  private:
    Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
    Status ApplySettings(const ConnectionOptions& options);
    // Sets WAL mode and returns the journal mode the file now has.
    Result<std::string> SwitchToWal(Millis timeout);

    sqlite3* db_;
    std::string path_;
    std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
};

// A transaction that rolls back in its destructor unless committed.
class Transaction {
  public:
    enum class Mode {
        kDeferred,   // a read: takes a snapshot at the first statement
        kImmediate,  // a write: takes the write lock at once, waiting out the busy timeout
    };

    explicit Transaction(Connection& connection) : connection_(connection) {}
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    Status Begin(Mode mode);
    Status Commit();

  private:
    Connection& connection_;
    bool open_ = false;
};

}  // namespace conveyor::sqlite
