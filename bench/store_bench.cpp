// store_bench: measures the storage layer. Each subcommand prints one JSON
// object on stdout; progress and errors go to stderr.
//
//   commit-ceiling  inserts rows of a fixed size into a table of its own, a
//                   set number per durable transaction, for a set time: the
//                   rate that one writer gets from the database itself.
//   cost-growth     opens the real task store, grows its tasks table to a
//                   requested size with bulk SQL, and measures the latency of
//                   Get, List, Create, Claim and Complete at that size.

#include <libpq-fe.h>
#include <sqlite3.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.hpp"
#include "core/time.hpp"
#include "storage/task_store.hpp"

namespace {

using conveyor::UnixMillis;
using Clock = std::chrono::steady_clock;

// A failed step of a measurement. main prints it and exits with status 1.
class BenchError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

double SecondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double MicrosSince(Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

double Round(double value, int decimals) {
    const double scale = std::pow(10.0, decimals);
    return std::round(value * scale) / scale;
}

// Returns count, p50, p90, p99, mean and max of latencies in microseconds.
// Percentiles use the nearest-rank method.
boost::json::object SummarizeLatencies(std::vector<double> micros) {
    boost::json::object summary;
    summary["count"] = micros.size();
    if (micros.empty()) {
        return summary;
    }
    std::sort(micros.begin(), micros.end());
    auto percentile = [&micros](double p) {
        const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * micros.size()));
        return micros[std::max<std::size_t>(rank, 1) - 1];
    };
    double total = 0;
    for (const double value : micros) {
        total += value;
    }
    summary["p50"] = Round(percentile(50), 1);
    summary["p90"] = Round(percentile(90), 1);
    summary["p99"] = Round(percentile(99), 1);
    summary["mean"] = Round(total / static_cast<double>(micros.size()), 1);
    summary["max"] = Round(micros.back(), 1);
    return summary;
}

// --- Database URLs ----------------------------------------------------------

enum class Backend { kSqlite, kPostgres };

struct Database {
    Backend backend = Backend::kSqlite;
    std::string location;  // a file path for SQLite, the whole URL for PostgreSQL
};

Database ParseDatabase(const std::string& url) {
    constexpr std::string_view kSqlitePrefix = "sqlite:";
    if (url.starts_with(kSqlitePrefix)) {
        std::string path = url.substr(kSqlitePrefix.size());
        if (path.empty()) {
            throw BenchError("the database URL 'sqlite:' names no file; write sqlite:PATH");
        }
        return Database{Backend::kSqlite, std::move(path)};
    }
    if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
        return Database{Backend::kPostgres, url};
    }
    // Only the scheme is repeated: the rest of a URL may contain a password.
    throw BenchError("unsupported database URL scheme '" + url.substr(0, url.find(':')) +
                     "'; expected sqlite:PATH or postgresql://...");
}

std::string_view BackendName(Backend backend) {
    return backend == Backend::kSqlite ? "sqlite" : "postgresql";
}

// --- SQLite -----------------------------------------------------------------

class SqliteDatabase {
  public:
    explicit SqliteDatabase(const std::string& path) {
        const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
        const int code = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
        if (code != SQLITE_OK) {
            const std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(code);
            sqlite3_close_v2(db_);
            throw BenchError("opening SQLite database '" + path + "' failed: " + detail);
        }
        sqlite3_busy_timeout(db_, 5000);
    }
    ~SqliteDatabase() { sqlite3_close_v2(db_); }
    SqliteDatabase(const SqliteDatabase&) = delete;
    SqliteDatabase& operator=(const SqliteDatabase&) = delete;

    sqlite3* handle() const { return db_; }

    void Execute(const std::string& sql) {
        char* error = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
            const std::string detail = error ? error : sqlite3_errmsg(db_);
            sqlite3_free(error);
            throw BenchError("SQLite statement '" + sql + "' failed: " + detail);
        }
    }

  private:
    sqlite3* db_ = nullptr;
};

class SqliteStatement {
  public:
    SqliteStatement(SqliteDatabase& db, const std::string& sql) : db_(db.handle()), sql_(sql) {
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
            throw BenchError("preparing SQLite statement '" + sql +
                             "' failed: " + sqlite3_errmsg(db_));
        }
    }
    ~SqliteStatement() { sqlite3_finalize(stmt_); }
    SqliteStatement(const SqliteStatement&) = delete;
    SqliteStatement& operator=(const SqliteStatement&) = delete;

    void BindInt64(int index, std::int64_t value) {
        CheckBind(sqlite3_bind_int64(stmt_, index, value));
    }
    void BindNull(int index) { CheckBind(sqlite3_bind_null(stmt_, index)); }
    void BindText(int index, std::string_view value) {
        CheckBind(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                      SQLITE_UTF8));
    }
    void BindBlob(int index, std::string_view value) {
        CheckBind(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT));
    }

    // Returns true when a row is ready, false when the statement is done.
    bool Step() {
        const int code = sqlite3_step(stmt_);
        if (code == SQLITE_ROW) {
            return true;
        }
        if (code == SQLITE_DONE) {
            return false;
        }
        throw BenchError("SQLite statement '" + sql_ + "' failed: " + sqlite3_errmsg(db_));
    }

    // Steps to the end and resets the statement for the next bindings.
    void Run() {
        while (Step()) {
        }
        Reset();
    }

    void Reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

    bool ColumnIsNull(int column) const {
        return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
    }
    std::int64_t ColumnInt64(int column) const { return sqlite3_column_int64(stmt_, column); }
    std::string ColumnText(int column) const {
        const auto* text = sqlite3_column_text(stmt_, column);
        const int size = sqlite3_column_bytes(stmt_, column);
        return text ? std::string(reinterpret_cast<const char*>(text), size) : std::string();
    }

  private:
    void CheckBind(int code) {
        if (code != SQLITE_OK) {
            throw BenchError("binding a parameter of '" + sql_ +
                             "' failed: " + sqlite3_errstr(code));
        }
    }

    sqlite3* db_;
    std::string sql_;
    sqlite3_stmt* stmt_ = nullptr;
};

// Returns the first column of the first row that `sql` returns.
std::string SqliteQueryText(SqliteDatabase& db, const std::string& sql) {
    SqliteStatement select(db, sql);
    if (!select.Step()) {
        throw BenchError("SQLite query '" + sql + "' returned no row");
    }
    return select.ColumnText(0);
}

std::int64_t SqliteQueryInt64(SqliteDatabase& db, const std::string& sql) {
    SqliteStatement select(db, sql);
    if (!select.Step()) {
        throw BenchError("SQLite query '" + sql + "' returned no row");
    }
    return select.ColumnInt64(0);
}

// --- PostgreSQL -------------------------------------------------------------

struct PgResultDeleter {
    void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// One query parameter: text, or bytes sent in binary format.
struct PgParam {
    std::string value;
    bool binary = false;
};

class PgConnection {
  public:
    explicit PgConnection(const std::string& url) : connection_(PQconnectdb(url.c_str())) {
        if (connection_ == nullptr || PQstatus(connection_) != CONNECTION_OK) {
            const std::string detail = connection_ ? PQerrorMessage(connection_) : "out of memory";
            PQfinish(connection_);
            throw BenchError("connecting to PostgreSQL failed: " + detail);
        }
        // Keeps notices such as "table does not exist, skipping" off stderr.
        Execute("SET client_min_messages = warning");
    }
    ~PgConnection() { PQfinish(connection_); }
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    // Runs one or more statements without parameters.
    PgResult Execute(const std::string& sql) {
        return Check(PQexec(connection_, sql.c_str()), sql);
    }

    PgResult Execute(const std::string& sql, const std::vector<PgParam>& params) {
        Arguments arguments(params);
        return Check(PQexecParams(connection_, sql.c_str(), arguments.count(), nullptr,
                                  arguments.values.data(), arguments.lengths.data(),
                                  arguments.formats.data(), 0),
                     sql);
    }

    void Prepare(const std::string& name, const std::string& sql, int param_count) {
        Check(PQprepare(connection_, name.c_str(), sql.c_str(), param_count, nullptr), sql);
    }

    PgResult ExecutePrepared(const std::string& name, const std::vector<PgParam>& params) {
        Arguments arguments(params);
        return Check(
            PQexecPrepared(connection_, name.c_str(), arguments.count(), arguments.values.data(),
                           arguments.lengths.data(), arguments.formats.data(), 0),
            name);
    }

    // Runs a query and returns its first row's first column as text.
    std::string QueryText(const std::string& sql) {
        PgResult result = Execute(sql);
        if (PQntuples(result.get()) < 1) {
            throw BenchError("PostgreSQL query '" + sql + "' returned no row");
        }
        return PQgetvalue(result.get(), 0, 0);
    }

  private:
    // The argument arrays libpq takes, pointing into `params`.
    struct Arguments {
        explicit Arguments(const std::vector<PgParam>& params) {
            for (const PgParam& param : params) {
                values.push_back(param.value.c_str());
                lengths.push_back(static_cast<int>(param.value.size()));
                formats.push_back(param.binary ? 1 : 0);
            }
        }
        int count() const { return static_cast<int>(values.size()); }

        std::vector<const char*> values;
        std::vector<int> lengths;
        std::vector<int> formats;
    };

    PgResult Check(PGresult* raw, const std::string& statement) {
        PgResult result(raw);
        const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            throw BenchError("PostgreSQL statement '" + statement +
                             "' failed: " + PQerrorMessage(connection_));
        }
        return result;
    }

    PGconn* connection_;
};

// Returns the server settings that decide how durable and how fast a commit is.
boost::json::object DescribePostgresServer(PgConnection& connection) {
    boost::json::object server;
    server["server_version"] = connection.QueryText("SHOW server_version");
    for (const char* name :
         {"fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "shared_buffers"}) {
        server[name] = connection.QueryText(std::string("SHOW ") + name);
    }
    return server;
}

// --- commit-ceiling ---------------------------------------------------------

struct CeilingOptions {
    std::string database;
    int rows_per_transaction = 1;
    double seconds = 5;
    int row_bytes = 1024;
};

// One backend's side of commit-ceiling: a table `ceiling_rows` of its own
// and transactions of plain inserts into it.
class CeilingTable {
  public:
    virtual ~CeilingTable() = default;
    virtual boost::json::object Describe() = 0;
    // Creates the table, first dropping one left by an interrupted run.
    virtual void Create() = 0;
    virtual void Begin() = 0;
    virtual void Insert(std::int64_t id, const std::string& body) = 0;
    virtual void Commit() = 0;
    virtual void Drop() = 0;
};

// Uses the connection settings of the SQLite task store: WAL, and
// synchronous=FULL so that each commit reaches the disk before it returns.
class SqliteCeilingTable : public CeilingTable {
  public:
    explicit SqliteCeilingTable(const std::string& path) : db_(path) {
        db_.Execute("PRAGMA foreign_keys = ON");
        const std::string mode = SqliteQueryText(db_, "PRAGMA journal_mode = WAL");
        if (mode != "wal") {
            throw BenchError("SQLite database '" + path + "' cannot use WAL mode; it stays in '" +
                             mode + "'");
        }
        db_.Execute("PRAGMA synchronous = FULL");
    }

    boost::json::object Describe() override {
        boost::json::object settings;
        settings["sqlite_version"] = sqlite3_libversion();
        settings["journal_mode"] = SqliteQueryText(db_, "PRAGMA journal_mode");
        settings["synchronous"] = SqliteQueryInt64(db_, "PRAGMA synchronous");
        return settings;
    }

    void Create() override {
        // INTEGER PRIMARY KEY makes the id the rowid, with no separate index,
        // as the tasks table has it.
        db_.Execute(
            "DROP TABLE IF EXISTS ceiling_rows;"
            "CREATE TABLE ceiling_rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
        insert_ = std::make_unique<SqliteStatement>(
            db_, "INSERT INTO ceiling_rows (id, body) VALUES (?1, ?2)");
    }

    void Begin() override { db_.Execute("BEGIN IMMEDIATE"); }

    void Insert(std::int64_t id, const std::string& body) override {
        insert_->BindInt64(1, id);
        insert_->BindBlob(2, body);
        insert_->Run();
    }

    void Commit() override { db_.Execute("COMMIT"); }

    void Drop() override {
        insert_.reset();
        db_.Execute("DROP TABLE ceiling_rows");
    }

  private:
    SqliteDatabase db_;
    std::unique_ptr<SqliteStatement> insert_;
};

class PostgresCeilingTable : public CeilingTable {
  public:
    explicit PostgresCeilingTable(const std::string& url) : connection_(url) {
        connection_.Execute("SET synchronous_commit = on");
    }

    boost::json::object Describe() override { return DescribePostgresServer(connection_); }

    void Create() override {
        connection_.Execute(
            "DROP TABLE IF EXISTS ceiling_rows;"
            "CREATE TABLE ceiling_rows (id bigint PRIMARY KEY, body bytea NOT NULL)");
        connection_.Prepare("ceiling_insert",
                            "INSERT INTO ceiling_rows (id, body) VALUES ($1::bigint, $2::bytea)",
                            2);
    }

    void Begin() override { connection_.Execute("BEGIN"); }

    // NOTE: each insert is one round trip to the server, so with many rows
    // per transaction the transaction time is mostly those round trips
    // rather than work of the database. Pipeline mode would remove them.
    void Insert(std::int64_t id, const std::string& body) override {
        connection_.ExecutePrepared("ceiling_insert",
                                    {PgParam{std::to_string(id)}, PgParam{body, true}});
    }

    void Commit() override { connection_.Execute("COMMIT"); }

    void Drop() override { connection_.Execute("DROP TABLE ceiling_rows"); }

  private:
    PgConnection connection_;
};

std::unique_ptr<CeilingTable> OpenCeilingTable(const Database& database) {
    if (database.backend == Backend::kSqlite) {
        return std::make_unique<SqliteCeilingTable>(database.location);
    }
    return std::make_unique<PostgresCeilingTable>(database.location);
}

// Returns `count` bodies of random bytes, so that no row compresses.
std::vector<std::string> RandomBodies(int count, int bytes) {
    std::mt19937_64 random(std::random_device{}());
    std::uniform_int_distribution<int> byte(0, 255);
    std::vector<std::string> bodies(static_cast<std::size_t>(count));
    for (std::string& body : bodies) {
        body.resize(static_cast<std::size_t>(bytes));
        for (char& c : body) {
            c = static_cast<char>(byte(random));
        }
    }
    return bodies;
}

boost::json::object RunCommitCeiling(const CeilingOptions& options) {
    const Database database = ParseDatabase(options.database);
    std::unique_ptr<CeilingTable> table = OpenCeilingTable(database);
    table->Create();

    constexpr int kBodyCount = 64;
    const std::vector<std::string> bodies = RandomBodies(kBodyCount, options.row_bytes);
    std::vector<double> commit_micros;
    std::vector<double> transaction_micros;
    std::int64_t next_id = 1;

    // The loop ends at the first transaction boundary past the deadline.
    const Clock::time_point start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(options.seconds));
    while (Clock::now() < deadline) {
        const Clock::time_point transaction_start = Clock::now();
        table->Begin();
        for (int row = 0; row < options.rows_per_transaction; ++row) {
            table->Insert(next_id, bodies[static_cast<std::size_t>(next_id % kBodyCount)]);
            ++next_id;
        }
        const Clock::time_point commit_start = Clock::now();
        table->Commit();
        commit_micros.push_back(MicrosSince(commit_start));
        transaction_micros.push_back(MicrosSince(transaction_start));
    }
    const double elapsed = SecondsSince(start);
    table->Drop();

    const auto transactions = static_cast<std::int64_t>(commit_micros.size());
    const std::int64_t rows = next_id - 1;
    boost::json::object report;
    report["command"] = "commit-ceiling";
    report["backend"] = BackendName(database.backend);
    report["rows_per_transaction"] = options.rows_per_transaction;
    report["row_bytes"] = options.row_bytes;
    report["seconds"] = Round(elapsed, 3);
    report["transactions"] = transactions;
    report["rows"] = rows;
    report["transactions_per_second"] = Round(static_cast<double>(transactions) / elapsed, 1);
    report["rows_per_second"] = Round(static_cast<double>(rows) / elapsed, 1);
    report["commit_latency_us"] = SummarizeLatencies(std::move(commit_micros));
    report["transaction_latency_us"] = SummarizeLatencies(std::move(transaction_micros));
    report["settings"] = table->Describe();
    return report;
}

// --- cost-growth: filling the task tables -------------------------------------

// The shape of the rows a fill inserts, close to what the service stores:
// text.analyze tasks of the default tenant with a text of about 110 bytes.
constexpr std::string_view kTenant = "";
constexpr std::string_view kTaskType = "text.analyze";
constexpr std::string_view kParamsJson = R"({"top_n":5,"language":"english","stem":false})";
constexpr std::string_view kResultJson =
    R"({"word_count":20,"unique_words":18,"top_words":[{"word":"courier","count":1},)"
    R"({"word":"customer","count":1},{"word":"delay","count":1},{"word":"depot","count":1},)"
    R"({"word":"order","count":1}]})";
constexpr int kMaxAttempts = 3;
// One task in kPendingEvery is PENDING; the others are COMPLETED.
constexpr std::int64_t kPendingEvery = 20;
// A COMPLETED task started this long after its creation and finished this
// long after its creation.
constexpr UnixMillis kStartDelayMs = 40;
constexpr UnixMillis kFinishDelayMs = 65;
// Filled tasks are created over this span, ending a minute ago.
constexpr UnixMillis kFillSpanMs = 28LL * 24 * 3600 * 1000;
constexpr UnixMillis kFillEndAgoMs = 60'000;
// Rows per transaction (SQLite) or per statement (PostgreSQL).
constexpr std::int64_t kFillChunkRows = 250'000;

std::string TaskText(std::int64_t number) {
    return "Order " + std::to_string(number) + " shipped from warehouse " +
           std::to_string(number % 97) +
           "; the courier reported a short delay near the depot, and the customer was told.";
}

// The rows of one fill. Row k (from 0) is task number first_number + k,
// created at a random moment in [start + k * step_ms, start + (k + 1) * step_ms).
// The rows thus come in created_at order, as the service inserts them.
struct FillPlan {
    std::int64_t first_number = 0;
    UnixMillis start = 0;
    double step_ms = 0;
};

// Direct SQL on the store's own tables, for what the TaskStore interface
// does not offer: counting, bulk inserts and picking ids.
class TaskTable {
  public:
    virtual ~TaskTable() = default;
    virtual boost::json::object Describe() = 0;
    virtual std::int64_t CountTasks() = 0;
    // Inserts rows [begin, end) of `plan`, with their texts.
    virtual void FillRange(const FillPlan& plan, std::int64_t begin, std::int64_t end) = 0;
    // Brings the tables to a steady state after a fill.
    virtual void FinishFill() = 0;
    // Returns the smallest and the largest task id, or nullopt when empty.
    virtual std::optional<std::pair<std::string, std::string>> TaskIdRange() = 0;
    // Returns the first task id at or after `id` in id order.
    virtual std::optional<std::string> FirstTaskIdFrom(const std::string& id) = 0;
    virtual std::int64_t DatabaseBytes() = 0;
};

class SqliteTaskTable : public TaskTable {
  public:
    // The store has already created the file, in WAL mode, and its schema.
    explicit SqliteTaskTable(const std::string& path) : db_(path) {
        // A fill commits often. In WAL mode NORMAL syncs only at checkpoints,
        // so a crash loses the latest fill rows but does not corrupt the file.
        db_.Execute("PRAGMA synchronous = NORMAL");
        db_.Execute("PRAGMA cache_size = -262144");
    }

    boost::json::object Describe() override {
        boost::json::object settings;
        settings["sqlite_version"] = sqlite3_libversion();
        return settings;
    }

    std::int64_t CountTasks() override {
        return SqliteQueryInt64(db_, "SELECT count(*) FROM tasks");
    }

    void FillRange(const FillPlan& plan, std::int64_t begin, std::int64_t end) override;

    void FinishFill() override {
        // The store never runs ANALYZE, so the bench does not either and
        // measures the plans that a deployment gets.
        db_.Execute("PRAGMA wal_checkpoint(TRUNCATE)");
    }

    std::optional<std::pair<std::string, std::string>> TaskIdRange() override {
        // SQLite reads min() or max() from an index only when it is the
        // query's single aggregate, so each gets its own statement.
        SqliteStatement low(db_, "SELECT min(task_id) FROM tasks");
        SqliteStatement high(db_, "SELECT max(task_id) FROM tasks");
        if (!low.Step() || low.ColumnIsNull(0) || !high.Step()) {
            return std::nullopt;
        }
        return std::make_pair(low.ColumnText(0), high.ColumnText(0));
    }

    std::optional<std::string> FirstTaskIdFrom(const std::string& id) override {
        SqliteStatement select(db_,
                               "SELECT task_id FROM tasks WHERE task_id >= ?1"
                               " ORDER BY task_id LIMIT 1");
        select.BindText(1, id);
        if (!select.Step()) {
            return std::nullopt;
        }
        return select.ColumnText(0);
    }

    std::int64_t DatabaseBytes() override {
        return SqliteQueryInt64(db_, "PRAGMA page_count") *
               SqliteQueryInt64(db_, "PRAGMA page_size");
    }

  private:
    SqliteDatabase db_;
};

void SqliteTaskTable::FillRange(const FillPlan& plan, std::int64_t begin, std::int64_t end) {
    SqliteStatement insert_task(
        db_,
        "INSERT INTO tasks (task_id, tenant, type, status, params_json, text_bytes, attempts,"
        " max_attempts, created_at, updated_at, started_at, finished_at, eligible_at,"
        " result_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?9, ?13)");
    SqliteStatement insert_text(
        db_, "INSERT INTO task_texts (task_rowid, text) VALUES (last_insert_rowid(), ?1)");
    std::mt19937_64 random(std::random_device{}());
    std::uniform_real_distribution<double> within_step(0.0, 1.0);

    db_.Execute("BEGIN IMMEDIATE");
    for (std::int64_t row = begin; row < end; ++row) {
        const std::int64_t number = plan.first_number + row;
        const bool pending = number % kPendingEvery == 0;
        const auto created_at =
            plan.start + static_cast<UnixMillis>((static_cast<double>(row) + within_step(random)) *
                                                 plan.step_ms);
        const std::string text = TaskText(number);

        insert_task.BindText(1, conveyor::NewUuidV7(created_at));
        insert_task.BindText(2, kTenant);
        insert_task.BindText(3, kTaskType);
        insert_task.BindText(4, pending ? "PENDING" : "COMPLETED");
        insert_task.BindText(5, kParamsJson);
        insert_task.BindInt64(6, static_cast<std::int64_t>(text.size()));
        insert_task.BindInt64(7, pending ? 0 : 1);
        insert_task.BindInt64(8, kMaxAttempts);
        insert_task.BindInt64(9, created_at);
        insert_task.BindInt64(10, pending ? created_at : created_at + kFinishDelayMs);
        if (pending) {
            insert_task.BindNull(11);
            insert_task.BindNull(12);
            insert_task.BindNull(13);
        } else {
            insert_task.BindInt64(11, created_at + kStartDelayMs);
            insert_task.BindInt64(12, created_at + kFinishDelayMs);
            insert_task.BindText(13, kResultJson);
        }
        insert_task.Run();
        insert_text.BindBlob(1, text);
        insert_text.Run();
    }
    db_.Execute("COMMIT");
}

// One INSERT ... SELECT from generate_series per chunk. $1 is the task
// number of the chunk's first row, $2 its row count, $3 the start of its
// first step in ms, $4 the step in ms and $5 kPendingEvery. The others are
// constant columns. The ids are UUIDv7, made of the random bytes of
// gen_random_uuid() with the first 48 bits replaced by created_at and the
// version nibble set to 7. Both inserts read the one materialized `source`,
// and the foreign key check of task_texts runs at the end of the statement,
// after the tasks rows are in.
constexpr char kPostgresFillSql[] = R"sql(
WITH numbered AS MATERIALIZED (
    SELECT $1::bigint + k AS number,
           $3::bigint + floor((k + random()) * $4::float8)::bigint AS created_at,
           ($1::bigint + k) % $5::bigint = 0 AS pending,
           convert_to(format('Order %s shipped from warehouse %s; the courier reported a short'
                             ' delay near the depot, and the customer was told.',
                             $1::bigint + k, ($1::bigint + k) % 97),
                      'UTF8') AS text,
           uuid_send(gen_random_uuid()) AS random_bytes
    FROM generate_series(0, $2::bigint - 1) AS k),
source AS MATERIALIZED (
    SELECT encode(set_byte(overlay(random_bytes PLACING substring(int8send(created_at) FROM 3)
                                   FROM 1 FOR 6),
                           6, (get_byte(random_bytes, 6) & 15) | 112), 'hex')::uuid AS task_id,
           created_at, pending, text
    FROM numbered),
inserted_tasks AS (
    INSERT INTO tasks (task_id, created_at, updated_at, eligible_at, text_bytes, started_at,
                       finished_at, attempts, max_attempts, tenant, type, status, params_json,
                       result_json)
    SELECT task_id, created_at,
           CASE WHEN pending THEN created_at ELSE created_at + $7::bigint END,
           created_at, octet_length(text),
           CASE WHEN pending THEN NULL ELSE created_at + $6::bigint END,
           CASE WHEN pending THEN NULL ELSE created_at + $7::bigint END,
           CASE WHEN pending THEN 0 ELSE 1 END, $8::integer, $9::text, $10::text,
           CASE WHEN pending THEN 'PENDING' ELSE 'COMPLETED' END, $11::text,
           CASE WHEN pending THEN NULL ELSE $12::text END
    FROM source)
INSERT INTO task_texts (task_id, text) SELECT task_id, text FROM source
)sql";

class PostgresTaskTable : public TaskTable {
  public:
    explicit PostgresTaskTable(const std::string& url) : connection_(url) {}

    boost::json::object Describe() override { return DescribePostgresServer(connection_); }

    std::int64_t CountTasks() override {
        return std::stoll(connection_.QueryText("SELECT count(*) FROM tasks"));
    }

    void FillRange(const FillPlan& plan, std::int64_t begin, std::int64_t end) override {
        const UnixMillis chunk_start =
            plan.start + static_cast<UnixMillis>(static_cast<double>(begin) * plan.step_ms);
        connection_.Execute(
            kPostgresFillSql,
            {PgParam{std::to_string(plan.first_number + begin)},
             PgParam{std::to_string(end - begin)}, PgParam{std::to_string(chunk_start)},
             PgParam{std::to_string(plan.step_ms)}, PgParam{std::to_string(kPendingEvery)},
             PgParam{std::to_string(kStartDelayMs)}, PgParam{std::to_string(kFinishDelayMs)},
             PgParam{std::to_string(kMaxAttempts)}, PgParam{std::string(kTenant)},
             PgParam{std::string(kTaskType)}, PgParam{std::string(kParamsJson)},
             PgParam{std::string(kResultJson)}});
    }

    void FinishFill() override {
        // Autovacuum would otherwise start on the new rows in the middle of
        // the measurements. VACUUM also sets the visibility map and the hint
        // bits that a long-running table has.
        connection_.Execute("VACUUM (ANALYZE) tasks");
        connection_.Execute("VACUUM (ANALYZE) task_texts");
    }

    std::optional<std::pair<std::string, std::string>> TaskIdRange() override {
        // PostgreSQL 15 has no min() or max() for uuid.
        PgResult result = connection_.Execute(
            "SELECT (SELECT task_id FROM tasks ORDER BY task_id LIMIT 1)::text,"
            " (SELECT task_id FROM tasks ORDER BY task_id DESC LIMIT 1)::text");
        if (PQgetisnull(result.get(), 0, 0)) {
            return std::nullopt;
        }
        return std::make_pair(std::string(PQgetvalue(result.get(), 0, 0)),
                              std::string(PQgetvalue(result.get(), 0, 1)));
    }

    std::optional<std::string> FirstTaskIdFrom(const std::string& id) override {
        PgResult result = connection_.Execute(
            // ORDER BY names the qualified column because a bare task_id would
            // mean the text output column, which PostgreSQL sorts in full.
            "SELECT t.task_id::text FROM tasks t WHERE t.task_id >= $1::uuid"
            " ORDER BY t.task_id LIMIT 1",
            {PgParam{id}});
        if (PQntuples(result.get()) < 1) {
            return std::nullopt;
        }
        return std::string(PQgetvalue(result.get(), 0, 0));
    }

    std::int64_t DatabaseBytes() override {
        return std::stoll(connection_.QueryText("SELECT pg_database_size(current_database())"));
    }

  private:
    PgConnection connection_;
};

std::unique_ptr<TaskTable> OpenTaskTable(const Database& database) {
    if (database.backend == Backend::kSqlite) {
        return std::make_unique<SqliteTaskTable>(database.location);
    }
    return std::make_unique<PostgresTaskTable>(database.location);
}

// Adds tasks until the table contains `target`. Returns the timings.
boost::json::object FillTasks(TaskTable& table, std::int64_t before, std::int64_t target) {
    boost::json::object fill;
    const std::int64_t added = std::max<std::int64_t>(target - before, 0);
    fill["tasks_added"] = added;
    if (added == 0) {
        return fill;
    }

    const UnixMillis end = conveyor::NowMillis() - kFillEndAgoMs;
    const FillPlan plan{.first_number = before,
                        .start = end - kFillSpanMs,
                        .step_ms = static_cast<double>(kFillSpanMs) / static_cast<double>(added)};
    const Clock::time_point start = Clock::now();
    for (std::int64_t begin = 0; begin < added; begin += kFillChunkRows) {
        const std::int64_t chunk_end = std::min(begin + kFillChunkRows, added);
        table.FillRange(plan, begin, chunk_end);
        std::cerr << "store_bench: inserted " << chunk_end << " of " << added << " tasks in "
                  << Round(SecondsSince(start), 1) << " s\n";
    }
    const double insert_seconds = SecondsSince(start);

    const Clock::time_point finish_start = Clock::now();
    table.FinishFill();
    const double finish_seconds = SecondsSince(finish_start);

    fill["insert_seconds"] = Round(insert_seconds, 2);
    fill["tasks_per_second"] = Round(static_cast<double>(added) / insert_seconds, 0);
    fill["finish_seconds"] = Round(finish_seconds, 2);
    fill["total_seconds"] = Round(insert_seconds + finish_seconds, 2);
    return fill;
}

// --- cost-growth: measurements ----------------------------------------------

struct CostGrowthOptions {
    std::string database;
    std::int64_t tasks = 0;
    int samples = 1000;
    // Timed Gets and List pages, or `samples` when 0. Many reads with few
    // writes give a profiler enough samples of the read path.
    int read_samples = 0;
};

// Untimed calls before each measured operation. They prepare statements on
// the connection in use and load the upper pages of each index.
constexpr int kWarmupCalls = 10;
// Depth of the deep list page, in rows from the newest task.
constexpr int kDeepListRows = 10'000;
constexpr int kListPageRows = 20;
constexpr int kMaxListPageRows = 1000;
constexpr std::string_view kBenchOwner = "store-bench";
constexpr conveyor::Millis kLease{60'000};

template <typename T>
T Unwrap(conveyor::Result<T> result, std::string_view operation) {
    if (!result.ok()) {
        throw BenchError(std::string(operation) + " failed: " + result.status().message());
    }
    return std::move(result).value();
}

// Calls `operation(i)` kWarmupCalls times untimed and then `samples` times
// timed, i running on from 0 across both. Returns the timed latencies.
template <typename Operation>
std::vector<double> TimeCalls(int samples, Operation operation) {
    for (int i = 0; i < kWarmupCalls; ++i) {
        operation(i);
    }
    std::vector<double> micros;
    micros.reserve(static_cast<std::size_t>(samples));
    for (int i = 0; i < samples; ++i) {
        const Clock::time_point start = Clock::now();
        operation(kWarmupCalls + i);
        micros.push_back(MicrosSince(start));
    }
    return micros;
}

// Reads the 48-bit millisecond prefix of a UUIDv7.
UnixMillis UuidMillis(const std::string& id) {
    return static_cast<UnixMillis>(std::stoull(id.substr(0, 8) + id.substr(9, 4), nullptr, 16));
}

// Picks `count` existing task ids, spread evenly over the id range: each is
// the first id at or after a random UUIDv7 between the smallest and the
// largest. Ids are time-ordered, so this picks by creation time.
std::vector<std::string> SampleTaskIds(TaskTable& table, int count) {
    const auto range = table.TaskIdRange();
    if (!range) {
        throw BenchError("the tasks table is empty; run with --tasks of at least 1");
    }
    std::mt19937_64 random(std::random_device{}());
    std::uniform_int_distribution<UnixMillis> moment(UuidMillis(range->first),
                                                     UuidMillis(range->second));
    std::vector<std::string> ids;
    ids.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        std::optional<std::string> id = table.FirstTaskIdFrom(conveyor::NewUuidV7(moment(random)));
        ids.push_back(id ? *id : range->second);
    }
    return ids;
}

// Returns the position of the `depth`-th row of the default list order
// (newest first), walking pages as a client following cursors would, or
// nullopt for depth 0.
std::optional<conveyor::ListPosition> FindListPosition(conveyor::TaskStore& store, int depth) {
    conveyor::ListQuery query;
    query.tenant = kTenant;
    std::optional<conveyor::ListPosition> position;
    int walked = 0;
    while (walked < depth) {
        query.limit = std::min(kMaxListPageRows, depth - walked);
        query.after = position;
        conveyor::TaskPage page = Unwrap(store.List(query), "List");
        if (page.items.empty()) {
            break;
        }
        walked += static_cast<int>(page.items.size());
        const conveyor::Task& last = page.items.back();
        position = conveyor::ListPosition{last.created_at, last.task_id};
        if (!page.has_more) {
            break;
        }
    }
    return position;
}

conveyor::NewTask BenchTask() {
    conveyor::NewTask task;
    task.created_at = conveyor::NowMillis();
    task.task_id = conveyor::NewUuidV7(task.created_at);
    task.tenant = kTenant;
    task.type = kTaskType;
    task.params_json = kParamsJson;
    task.text = TaskText(task.created_at);
    task.max_attempts = kMaxAttempts;
    return task;
}

std::vector<double> TimeGets(conveyor::TaskStore& store, const std::vector<std::string>& ids,
                             int samples, bool include_text) {
    return TimeCalls(samples, [&](int i) {
        static_cast<void>(
            Unwrap(store.Get(kTenant, ids[static_cast<std::size_t>(i)], include_text), "Get"));
    });
}

std::vector<double> TimeLists(conveyor::TaskStore& store, int samples,
                              const std::optional<conveyor::ListPosition>& after) {
    conveyor::ListQuery query;
    query.tenant = kTenant;
    query.limit = kListPageRows;
    query.after = after;
    return TimeCalls(samples, [&](int) { static_cast<void>(Unwrap(store.List(query), "List")); });
}

// Claims one task and completes it, first kWarmupCalls times untimed and
// then `samples` times timed. Returns the claim and the complete latencies.
std::pair<std::vector<double>, std::vector<double>> TimeClaimAndComplete(conveyor::TaskStore& store,
                                                                         int samples) {
    std::vector<double> claim_micros;
    std::vector<double> complete_micros;
    for (int i = 0; i < kWarmupCalls + samples; ++i) {
        const Clock::time_point claim_start = Clock::now();
        std::vector<conveyor::ClaimedTask> claimed =
            Unwrap(store.Claim(kBenchOwner, 1, conveyor::NowMillis(), kLease), "Claim");
        const double claim_time = MicrosSince(claim_start);
        if (claimed.empty()) {
            throw BenchError("Claim found no PENDING task that is due");
        }

        const Clock::time_point complete_start = Clock::now();
        const conveyor::FenceOutcome outcome = Unwrap(
            store.Complete(claimed.front().lease, kResultJson, conveyor::NowMillis()), "Complete");
        const double complete_time = MicrosSince(complete_start);
        if (outcome != conveyor::FenceOutcome::kApplied) {
            throw BenchError("Complete lost the lease of task " + claimed.front().lease.task_id);
        }

        if (i >= kWarmupCalls) {
            claim_micros.push_back(claim_time);
            complete_micros.push_back(complete_time);
        }
    }
    return {std::move(claim_micros), std::move(complete_micros)};
}

boost::json::object RunCostGrowth(const CostGrowthOptions& options) {
    const Database database = ParseDatabase(options.database);
    std::unique_ptr<conveyor::TaskStore> store =
        Unwrap(conveyor::OpenTaskStore(options.database), "opening the task store");
    if (const conveyor::Status status = store->Migrate(); !status.ok()) {
        throw BenchError("migrating the task store failed: " + status.message());
    }
    std::unique_ptr<TaskTable> table = OpenTaskTable(database);

    const std::int64_t before = table->CountTasks();
    boost::json::object fill = FillTasks(*table, before, options.tasks);
    const std::int64_t tasks = std::max(before, options.tasks);

    // Separate ids for the two Get measurements, so that the second does
    // not find the pages of the first in the cache.
    const int samples = options.samples;
    const int reads = options.read_samples > 0 ? options.read_samples : samples;
    const std::vector<std::string> ids = SampleTaskIds(*table, 2 * (kWarmupCalls + reads));
    const std::vector<std::string> get_ids(ids.begin(), ids.begin() + kWarmupCalls + reads);
    const std::vector<std::string> get_text_ids(ids.begin() + kWarmupCalls + reads, ids.end());

    boost::json::object latency;
    latency["get"] = SummarizeLatencies(TimeGets(*store, get_ids, reads, false));
    latency["get_with_text"] = SummarizeLatencies(TimeGets(*store, get_text_ids, reads, true));
    latency["list_first_page"] = SummarizeLatencies(TimeLists(*store, reads, std::nullopt));

    const auto deep_rows =
        static_cast<int>(std::clamp<std::int64_t>(tasks - kListPageRows, 0, kDeepListRows));
    const std::optional<conveyor::ListPosition> deep_position = FindListPosition(*store, deep_rows);
    latency["list_deep_page"] = SummarizeLatencies(TimeLists(*store, reads, deep_position));

    // The creates also keep PENDING tasks available for the claims that
    // follow, however small the table.
    std::vector<conveyor::NewTask> new_tasks;
    for (int i = 0; i < kWarmupCalls + samples; ++i) {
        new_tasks.push_back(BenchTask());
    }
    latency["create"] = SummarizeLatencies(TimeCalls(samples, [&](int i) {
        static_cast<void>(
            Unwrap(store->Create(new_tasks[static_cast<std::size_t>(i)], std::nullopt), "Create"));
    }));

    auto [claim_micros, complete_micros] = TimeClaimAndComplete(*store, samples);
    latency["claim"] = SummarizeLatencies(std::move(claim_micros));
    latency["complete"] = SummarizeLatencies(std::move(complete_micros));

    boost::json::object report;
    report["command"] = "cost-growth";
    report["backend"] = BackendName(database.backend);
    report["tasks_requested"] = options.tasks;
    report["tasks_before"] = before;
    report["tasks"] = tasks;
    report["fill"] = std::move(fill);
    report["database_bytes"] = table->DatabaseBytes();
    report["samples"] = samples;
    report["read_samples"] = reads;
    report["list_page_rows"] = kListPageRows;
    report["list_deep_rows"] = deep_rows;
    report["latency_us"] = std::move(latency);
    report["settings"] = table->Describe();
    return report;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Measures the storage layer: the durable commit rate of the database itself, and how "
        "the costs of the task store grow with the size of its tasks table. Each command "
        "prints one JSON object on stdout."};
    app.require_subcommand(1);

    CeilingOptions ceiling;
    CLI::App* ceiling_command = app.add_subcommand(
        "commit-ceiling",
        "Insert rows into a table ceiling_rows of its own, a set number per durable "
        "transaction, for a set time; report rows and transactions per second and the commit "
        "latency. The table is dropped at the end (and first, when a failed run left it).");
    ceiling_command
        ->add_option("--database", ceiling.database, "Database: sqlite:PATH or a postgresql:// URL")
        ->required();
    ceiling_command
        ->add_option("--rows-per-transaction", ceiling.rows_per_transaction,
                     "Rows inserted in each transaction")
        ->required()
        ->check(CLI::Range(1, 1'000'000));
    ceiling_command->add_option("--seconds", ceiling.seconds, "How long to insert, in seconds")
        ->required()
        ->check(CLI::Range(0.1, 3600.0));
    ceiling_command->add_option("--row-bytes", ceiling.row_bytes, "Bytes of random data per row")
        ->check(CLI::Range(0, 16 << 20))
        ->capture_default_str();

    CostGrowthOptions growth;
    CLI::App* growth_command = app.add_subcommand(
        "cost-growth",
        "Open the task store, migrate it, fill its tasks table with bulk SQL up to --tasks "
        "tasks, then report the latency of Get, List, Create, Claim and Complete in "
        "microseconds.");
    growth_command->footer(
        "The same database can be reused across runs: --tasks only ever adds tasks, up to that "
        "total, and never deletes any. Each run also creates SAMPLES + 10 PENDING tasks and "
        "claims and completes as many.");
    growth_command
        ->add_option("--database", growth.database, "Database: sqlite:PATH or a postgresql:// URL")
        ->required();
    growth_command->add_option("--tasks", growth.tasks, "Tasks the table contains before measuring")
        ->required()
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000'000}));
    growth_command->add_option("--samples", growth.samples, "Timed calls of each operation")
        ->check(CLI::Range(1, 1'000'000))
        ->capture_default_str();
    growth_command
        ->add_option("--read-samples", growth.read_samples,
                     "Timed Gets and List pages, when they should differ from --samples (for "
                     "example many reads under a profiler)")
        ->check(CLI::Range(1, 1'000'000));

    CLI11_PARSE(app, argc, argv);

    try {
        const boost::json::object report =
            ceiling_command->parsed() ? RunCommitCeiling(ceiling) : RunCostGrowth(growth);
        std::cout << boost::json::serialize(report) << "\n";
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "store_bench: " << error.what() << "\n";
        return 1;
    }
}
