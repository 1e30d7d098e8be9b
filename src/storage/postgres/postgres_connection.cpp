#include "storage/postgres/postgres_connection.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <array>
#include <cstring>
#include <utility>

#include "core/log.hpp"

namespace conveyor::postgres {
namespace {

constexpr Oid kUuidOid = 2950;
constexpr char kHexDigits[] = "0123456789abcdef";

// Returns libpq's text without the trailing newline it always adds.
std::string TrimMessage(const char* text) {
    std::string message = text == nullptr ? "" : text;
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
        message.pop_back();
    }
    return message;
}

// Sends server notices (such as "relation already exists, skipping") to the
// debug log instead of libpq's default, which prints them on stderr.
void LogNotice(void* /*arg*/, const char* message) {
    log::Debug("postgres", "server notice", {{"notice", TrimMessage(message)}});
}

std::uint64_t ReadBigEndian(const char* data, int length) {
    std::uint64_t value = 0;
    for (int i = 0; i < length; ++i) {
        value = (value << 8) | static_cast<unsigned char>(data[i]);
    }
    return value;
}

std::string FormatUuid(const char* data) {
    std::string text;
    text.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            text.push_back('-');
        }
        const auto byte = static_cast<unsigned char>(data[i]);
        text.push_back(kHexDigits[byte >> 4]);
        text.push_back(kHexDigits[byte & 0x0F]);
    }
    return text;
}

void AppendQuotedElement(std::string& literal, std::string_view element) {
    literal.push_back('"');
    for (const char c : element) {
        if (c == '"' || c == '\\') {
            literal.push_back('\\');
        }
        literal.push_back(c);
    }
    literal.push_back('"');
}

}  // namespace

// The parallel arrays that libpq takes for the parameters of one call.
struct ParamArrays {
    explicit ParamArrays(const Params& params) : count(params.size()) {
        for (const Params::Value& value : params.values_) {
            const std::string_view bytes = value.is_borrowed ? value.borrowed : value.owned;
            // libpq reads a NULL pointer as SQL NULL, so empty bytes need a
            // non-null pointer.
            const char* data = bytes.data() == nullptr ? "" : bytes.data();
            values.push_back(value.is_null ? nullptr : data);
            lengths.push_back(static_cast<int>(bytes.size()));
            formats.push_back(value.is_binary ? 1 : 0);
        }
    }

    int count;
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
};

bool IsConnectionLoss(std::string_view sqlstate) {
    return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
           sqlstate == "57P03" || sqlstate == "53300" || sqlstate == "25006";
}

bool IsRetryable(std::string_view sqlstate) {
    return sqlstate == "40001" || sqlstate == "40P01";
}

Status ErrorStatus(std::string_view sqlstate, std::string_view context, std::string_view detail) {
    std::string message(context);
    message += ": ";
    message += detail;
    message += " (SQLSTATE ";
    message += sqlstate.empty() ? "none" : std::string(sqlstate);
    message += ")";
    if (IsConnectionLoss(sqlstate) || IsRetryable(sqlstate)) {
        return Status::Unavailable(std::move(message));
    }
    if (sqlstate == "23505") {
        return Status::Conflict(std::move(message));
    }
    return Status::Internal(std::move(message));
}

std::string DescribeTarget(const std::string& url) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
    if (options == nullptr) {
        PQfreemem(error);
        return "(unparsable URL)";
    }
    std::string description;
    for (const std::string_view keyword : {"host", "hostaddr", "port", "dbname", "user"}) {
        for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
            if (option->val == nullptr || keyword != option->keyword) {
                continue;
            }
            if (!description.empty()) {
                description += ' ';
            }
            description += keyword;
            description += '=';
            description += option->val;
        }
    }
    PQconninfoFree(options);
    return description.empty() ? "(libpq defaults)" : description;
}

ConnectParameters::ConnectParameters(std::string url)
    : url_(std::move(url)), connect_timeout_(std::to_string(kDefaultConnectTimeoutSeconds)) {
    auto add = [&](const char* keyword, const char* value) {
        keywords_.push_back(keyword);
        values_.push_back(value);
    };
    add("connect_timeout", connect_timeout_.c_str());
    // Without keepalives a connection to a host that vanished would wait
    // for the kernel's default of two hours before a call fails.
    add("keepalives", "1");
    add("keepalives_idle", "30");
    add("keepalives_interval", "10");
    add("keepalives_count", "3");
    add("fallback_application_name", "conveyor");
    add("dbname", url_.c_str());
    // Task fields are UTF-8, and binary results carry text in the client
    // encoding, so no other encoding may apply.
    add("client_encoding", "UTF8");
    keywords_.push_back(nullptr);
    values_.push_back(nullptr);
}

void RouteNoticesToLog(pg_conn* conn) {
    PQsetNoticeProcessor(conn, LogNotice, nullptr);
}

std::string LastErrorMessage(pg_conn* conn) {
    return TrimMessage(PQerrorMessage(conn));
}

// Params

Params& Params::Text(std::string_view value) {
    values_.push_back(Value{.owned = std::string(value)});
    return *this;
}

Params& Params::Int64(std::int64_t value) {
    values_.push_back(Value{.owned = std::to_string(value)});
    return *this;
}

Params& Params::Bytes(std::string_view value) {
    values_.push_back(Value{.borrowed = value, .is_borrowed = true, .is_binary = true});
    return *this;
}

Params& Params::OwnedBytes(std::string_view value) {
    values_.push_back(Value{.owned = std::string(value), .is_binary = true});
    return *this;
}

Params& Params::Null() {
    values_.push_back(Value{.is_null = true});
    return *this;
}

Params& Params::OptionalText(const std::optional<std::string>& value) {
    return value ? Text(*value) : Null();
}

Params& Params::OptionalInt64(std::optional<std::int64_t> value) {
    return value ? Int64(*value) : Null();
}

Params& Params::TextArray(const std::vector<std::string>& values) {
    std::string literal = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) {
            literal.push_back(',');
        }
        AppendQuotedElement(literal, values[i]);
    }
    literal.push_back('}');
    values_.push_back(Value{.owned = std::move(literal)});
    return *this;
}

Params& Params::Int64Array(const std::vector<std::int64_t>& values) {
    std::string literal = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) {
            literal.push_back(',');
        }
        literal += std::to_string(values[i]);
    }
    literal.push_back('}');
    values_.push_back(Value{.owned = std::move(literal)});
    return *this;
}

// QueryResult

QueryResult::QueryResult(pg_result* result) : result_(result) {}

QueryResult::~QueryResult() {
    PQclear(result_);
}

QueryResult::QueryResult(QueryResult&& other) noexcept
    : result_(std::exchange(other.result_, nullptr)) {}

QueryResult& QueryResult::operator=(QueryResult&& other) noexcept {
    if (this != &other) {
        PQclear(result_);
        result_ = std::exchange(other.result_, nullptr);
    }
    return *this;
}

int QueryResult::rows() const {
    return result_ == nullptr ? 0 : PQntuples(result_);
}

int QueryResult::columns() const {
    return result_ == nullptr ? 0 : PQnfields(result_);
}

bool QueryResult::IsNull(int row, int column) const {
    return PQgetisnull(result_, row, column) != 0;
}

std::int64_t QueryResult::Int64(int row, int column) const {
    const int length = PQgetlength(result_, row, column);
    const std::uint64_t bits = ReadBigEndian(PQgetvalue(result_, row, column), length);
    // Sign-extend the 2- and 4-byte integer types.
    switch (length) {
        case 2:
            return static_cast<std::int16_t>(bits);
        case 4:
            return static_cast<std::int32_t>(bits);
        default:
            return static_cast<std::int64_t>(bits);
    }
}

std::string QueryResult::Text(int row, int column) const {
    const char* data = PQgetvalue(result_, row, column);
    const int length = PQgetlength(result_, row, column);
    if (PQftype(result_, column) == kUuidOid && length == 16) {
        return FormatUuid(data);
    }
    return std::string(data, static_cast<std::size_t>(length));
}

std::optional<std::string> QueryResult::OptionalText(int row, int column) const {
    if (IsNull(row, column)) {
        return std::nullopt;
    }
    return Text(row, column);
}

std::optional<std::int64_t> QueryResult::OptionalInt64(int row, int column) const {
    if (IsNull(row, column)) {
        return std::nullopt;
    }
    return Int64(row, column);
}

std::string QueryResult::command_status() const {
    return result_ == nullptr ? "" : PQcmdStatus(result_);
}

// Connection

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& url) {
    const ConnectParameters parameters(url);
    pg_conn* conn = PQconnectdbParams(parameters.keywords(), parameters.values(), 1);
    if (conn == nullptr) {
        return Status::Unavailable("libpq could not allocate a connection");
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        std::string message = "cannot connect to PostgreSQL at " + DescribeTarget(url) + ": " +
                              TrimMessage(PQerrorMessage(conn));
        PQfinish(conn);
        return Status::Unavailable(std::move(message));
    }
    PQsetNoticeProcessor(conn, LogNotice, nullptr);
    return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::~Connection() {
    PQfinish(conn_);
}

bool Connection::usable() const {
    return !lost_ && PQstatus(conn_) == CONNECTION_OK;
}

bool Connection::idle_in_no_transaction() const {
    return PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

bool Connection::CheckIdle() {
    if (!usable()) {
        return false;
    }
    const int fd = PQsocket(conn_);
    if (fd < 0) {
        lost_ = true;
        return false;
    }
    // An idle connection receives nothing unless the server is closing it
    // or reports a changed setting. A closing server sends an error message,
    // which libpq passes to the notice processor without marking the
    // connection broken, and then the end of file, which a second read
    // notices. A few rounds cover both.
    constexpr int kMaxReads = 4;
    for (int read = 0; read < kMaxReads; ++read) {
        pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
        if (poll(&entry, 1, 0) <= 0) {
            break;
        }
        if (PQconsumeInput(conn_) == 0) {
            lost_ = true;
            return false;
        }
        while (PGnotify* notify = PQnotifies(conn_)) {
            PQfreemem(notify);
        }
    }
    return usable();
}

Result<QueryResult> Connection::Check(pg_result* result, std::string_view context) {
    const ExecStatusType status = PQresultStatus(result);
    if (result != nullptr && (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)) {
        return QueryResult(result);
    }

    std::string sqlstate;
    std::string detail;
    if (result != nullptr) {
        const char* field = PQresultErrorField(result, PG_DIAG_SQLSTATE);
        sqlstate = field == nullptr ? "" : field;
        const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
        detail = primary != nullptr ? primary : TrimMessage(PQresultErrorMessage(result));
        PQclear(result);
    }
    if (detail.empty()) {
        detail = TrimMessage(PQerrorMessage(conn_));
    }
    // libpq reports a broken connection with no SQLSTATE of its own.
    if (IsConnectionLoss(sqlstate) || PQstatus(conn_) != CONNECTION_OK) {
        lost_ = true;
        return Status::Unavailable(std::string(context) + ": " + detail + " (connection lost)");
    }
    if (IsRetryable(sqlstate)) {
        retryable_failure_ = true;
    }
    return ErrorStatus(sqlstate, context, detail);
}

Result<QueryResult> Connection::Execute(const Statement& statement, const Params& params) {
    if (!prepared_.contains(statement.name)) {
        Result<QueryResult> prepared =
            Check(PQprepare(conn_, statement.name.c_str(), statement.sql.c_str(), 0, nullptr),
                  "preparing " + statement.name);
        if (!prepared.ok()) {
            return prepared.status();
        }
        prepared_.insert(statement.name);
    }

    const ParamArrays arrays(params);
    return Check(PQexecPrepared(conn_, statement.name.c_str(), arrays.count, arrays.values.data(),
                                arrays.lengths.data(), arrays.formats.data(), 1),
                 statement.name);
}

Result<QueryResult> Connection::ExecuteOnce(const std::string& sql, const Params& params) {
    const ParamArrays arrays(params);
    return Check(PQexecParams(conn_, sql.c_str(), arrays.count, nullptr, arrays.values.data(),
                              arrays.lengths.data(), arrays.formats.data(), 1),
                 "running a one-off statement");
}

Result<QueryResult> Connection::ExecuteScript(const std::string& sql) {
    return Check(PQexec(conn_, sql.c_str()), "running " + sql.substr(0, 60));
}

// Transaction

Transaction::~Transaction() {
    if (!open_) {
        return;
    }
    if (!connection_.usable()) {
        return;
    }
    if (!connection_.ExecuteScript("ROLLBACK").ok()) {
        connection_.Discard();
    }
}

Status Transaction::Begin(const std::string& begin_sql) {
    Result<QueryResult> begun = connection_.ExecuteScript(begin_sql);
    if (!begun.ok()) {
        return begun.status();
    }
    open_ = true;
    return Status::Ok();
}

Status Transaction::Commit() {
    open_ = false;
    Result<QueryResult> committed = connection_.ExecuteScript("COMMIT");
    if (!committed.ok()) {
        return committed.status();
    }
    // COMMIT of a transaction that already failed succeeds as ROLLBACK.
    if (committed->command_status() != "COMMIT") {
        return Status::Internal("the transaction was rolled back instead of committed");
    }
    return Status::Ok();
}

}  // namespace conveyor::postgres
