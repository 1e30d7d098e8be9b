#include "storage/sqlite/sqlite_connection.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

namespace conveyor::sqlite {
namespace {

constexpr std::size_t kMaxSqlInMessage = 160;

std::string ShortenSql(std::string_view sql) {
    std::string text;
    text.reserve(std::min(sql.size(), kMaxSqlInMessage));
    bool last_was_space = false;
    for (const char c : sql) {
        const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
        if (space && last_was_space) {
            continue;
        }
        text.push_back(space ? ' ' : c);
        last_was_space = space;
        if (text.size() >= kMaxSqlInMessage) {
            text += "...";
            break;
        }
    }
    return text;
}

// A zero-length view may have a null data pointer, which the bind functions
// would store as SQL NULL instead of an empty value.
const char* NonNullData(std::string_view value) {
    return value.data() ? value.data() : "";
}

}  // namespace

Status ErrorStatus(int code, std::string_view context, std::string_view detail) {
    std::string message(context);
    message += ": ";
    message += detail;
    message += " (SQLite code ";
    message += std::to_string(code);
    message += ")";
    switch (code & 0xFF) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_CANTOPEN:
        case SQLITE_IOERR:
        case SQLITE_FULL:
            return Status::Unavailable(std::move(message));
        default:
            return Status::Internal(std::move(message));
    }
}

// Statement

Statement::~Statement() {
    sqlite3_finalize(stmt_);
}

void Statement::RecordBindError(int code, int index) {
    if (code != SQLITE_OK && bind_error_ == 0) {
        bind_error_ = code;
        bind_error_index_ = index;
    }
}

void Statement::BindInt64(int index, std::int64_t value) {
    RecordBindError(sqlite3_bind_int64(stmt_, index, value), index);
}

void Statement::BindText(int index, std::string_view value) {
    RecordBindError(sqlite3_bind_text64(stmt_, index, NonNullData(value), value.size(),
                                        SQLITE_TRANSIENT, SQLITE_UTF8),
                    index);
}

void Statement::BindBlob(int index, std::string_view value) {
    RecordBindError(
        sqlite3_bind_blob64(stmt_, index, NonNullData(value), value.size(), SQLITE_TRANSIENT),
        index);
}

void Statement::BindNull(int index) {
    RecordBindError(sqlite3_bind_null(stmt_, index), index);
}

void Statement::BindOptionalText(int index, const std::optional<std::string>& value) {
    if (value) {
        BindText(index, *value);
    } else {
        BindNull(index);
    }
}

void Statement::BindOptionalInt64(int index, std::optional<std::int64_t> value) {
    if (value) {
        BindInt64(index, *value);
    } else {
        BindNull(index);
    }
}

Result<bool> Statement::Step() {
    if (bind_error_ != 0) {
        return ErrorStatus(
            bind_error_,
            "binding parameter " + std::to_string(bind_error_index_) + " of " + SqlForMessage(),
            sqlite3_errstr(bind_error_));
    }
    const int code = sqlite3_step(stmt_);
    if (code == SQLITE_ROW) {
        return true;
    }
    if (code == SQLITE_DONE) {
        return false;
    }
    failed_code_ = code;
    return ErrorStatus(code, "running " + SqlForMessage(),
                       sqlite3_errmsg(sqlite3_db_handle(stmt_)));
}

Status Statement::Run() {
    while (true) {
        Result<bool> row = Step();
        if (!row.ok()) {
            return row.status();
        }
        if (!*row) {
            return Status::Ok();
        }
    }
}

bool Statement::ColumnIsNull(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::ColumnInt64(int column) const {
    return sqlite3_column_int64(stmt_, column);
}

std::string Statement::ColumnText(int column) const {
    return ColumnBytes(column);
}

std::string Statement::ColumnBytes(int column) const {
    // Asking for the pointer first and the size second is the order the C
    // API documents as safe from type conversions in between.
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr || size <= 0) {
        return std::string();
    }
    return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

std::optional<std::string> Statement::ColumnOptionalText(int column) const {
    if (ColumnIsNull(column)) {
        return std::nullopt;
    }
    return ColumnBytes(column);
}

std::optional<std::int64_t> Statement::ColumnOptionalInt64(int column) const {
    if (ColumnIsNull(column)) {
        return std::nullopt;
    }
    return ColumnInt64(column);
}

void Statement::Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    bind_error_ = 0;
    bind_error_index_ = 0;
    failed_code_ = 0;
}

std::string Statement::SqlForMessage() const {
    const char* sql = sqlite3_sql(stmt_);
    return ShortenSql(sql ? sql : "");
}

StatementHandle::~StatementHandle() {
    if (statement_ != nullptr) {
        statement_->Reset();
    }
}

// Connection

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path,
                                                     const ConnectionOptions& options) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    if (options.create) {
        flags |= SQLITE_OPEN_CREATE;
    }
    sqlite3* db = nullptr;
    const int code = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (code != SQLITE_OK) {
        Status status = ErrorStatus(code, "opening SQLite database '" + path + "'",
                                    db ? sqlite3_errmsg(db) : sqlite3_errstr(code));
        sqlite3_close_v2(db);
        return status;
    }

    std::unique_ptr<Connection> connection(new Connection(db, path));
    if (Status status = connection->ApplySettings(options); !status.ok()) {
        return status;
    }
    return connection;
}

Connection::~Connection() {
    // Statements must be finalized before the connection closes.
    statements_.clear();
    sqlite3_close_v2(db_);
}

Status Connection::ApplySettings(const ConnectionOptions& options) {
    const auto timeout_ms = static_cast<int>(options.busy_timeout.count());
    if (const int code = sqlite3_busy_timeout(db_, timeout_ms); code != SQLITE_OK) {
        return ErrorStatus(code, "setting the busy timeout on '" + path_ + "'",
                           sqlite3_errmsg(db_));
    }
    if (Status status = Execute("PRAGMA foreign_keys = ON"); !status.ok()) {
        return status;
    }
    // The page cache grows only as pages are used. The default of 2 MiB is
    // smaller than the indexes that every insert touches once the table
    // contains a few hundred thousand tasks.
    if (Status status =
            Execute(options.read_only ? "PRAGMA cache_size = -8192" : "PRAGMA cache_size = -32768");
        !status.ok()) {
        return status;
    }
    if (options.read_only) {
        return Execute("PRAGMA query_only = ON");
    }

    // WAL lets readers in other connections and processes go on while one
    // writer commits. The mode is stored in the file, so asking again is
    // harmless.
    Result<std::string> mode = SwitchToWal(options.busy_timeout);
    if (!mode.ok()) {
        return mode.status();
    }
    if (*mode != "wal") {
        return Status::Internal("SQLite database '" + path_ +
                                "' cannot use WAL mode; its journal mode stays '" + *mode +
                                "'. Put the file on a local file system.");
    }

    // FULL makes each commit reach the disk before it returns, so a stored
    // task survives a power loss as well as a crash.
    return Execute("PRAGMA synchronous = FULL");
}

Result<std::string> Connection::SwitchToWal(Millis timeout) {
    // While another connection switches a new file to WAL, SQLite 3.40 fails
    // the switch with SQLITE_BUSY at once instead of calling the busy
    // handler, so it is retried here until the busy timeout has passed.
    constexpr Millis kRetryPause{10};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        {
            Result<StatementHandle> journal = Prepare("PRAGMA journal_mode = WAL");
            if (!journal.ok()) {
                return journal.status();
            }
            Result<bool> row = (*journal)->Step();
            if (row.ok()) {
                return *row ? (*journal)->ColumnText(0) : std::string();
            }
            const bool busy = ((*journal)->failed_code() & 0xFF) == SQLITE_BUSY;
            if (!busy || std::chrono::steady_clock::now() >= deadline) {
                return row.status();
            }
        }
        std::this_thread::sleep_for(kRetryPause);
    }
}

Status Connection::Execute(std::string_view sql) {
    const std::string text(sql);
    char* error = nullptr;
    const int code = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
    if (code == SQLITE_OK) {
        return Status::Ok();
    }
    Status status = ErrorStatus(code, "executing " + ShortenSql(sql) + " on '" + path_ + "'",
                                error ? error : sqlite3_errmsg(db_));
    sqlite3_free(error);
    return status;
}

Result<StatementHandle> Connection::Prepare(const std::string& sql) {
    if (auto found = statements_.find(sql); found != statements_.end()) {
        return StatementHandle(found->second.get());
    }
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    const int code = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()) + 1,
                                        SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (code != SQLITE_OK) {
        return ErrorStatus(code, "preparing " + ShortenSql(sql) + " on '" + path_ + "'",
                           sqlite3_errmsg(db_));
    }
    if (stmt == nullptr) {
        return Status::Internal("preparing " + ShortenSql(sql) + ": no statement in the text");
    }
    auto statement = std::make_unique<Statement>(stmt);
    Statement* pointer = statement.get();
    statements_.emplace(sql, std::move(statement));
    return StatementHandle(pointer);
}

int Connection::Changes() const {
    return sqlite3_changes(db_);
}

std::int64_t Connection::LastInsertRowId() const {
    return sqlite3_last_insert_rowid(db_);
}

bool Connection::InTransaction() const {
    return sqlite3_get_autocommit(db_) == 0;
}

// Transaction

Transaction::~Transaction() {
    // SQLite ends a transaction by itself after some errors (a full disk, an
    // I/O error), and a ROLLBACK then would only fail.
    if (open_ && connection_.InTransaction()) {
        static_cast<void>(connection_.Execute("ROLLBACK"));
    }
}

Status Transaction::Begin(Mode mode) {
    if (connection_.InTransaction()) {
        return Status::Internal("a transaction is already open on '" + connection_.path() + "'");
    }
    Status status = connection_.Execute(mode == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN");
    open_ = status.ok();
    return status;
}

Status Transaction::Commit() {
    Status status = connection_.Execute("COMMIT");
    if (status.ok()) {
        open_ = false;
    }
    return status;
}

}  // namespace conveyor::sqlite
