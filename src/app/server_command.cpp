#include "app/server_command.hpp"

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cmath>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "core/api_keys.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/rate_limiter.hpp"
#include "http/api.hpp"
#include "http/body_budget.hpp"
#include "http/pending_limit.hpp"
#include "http/server.hpp"
#include "http/task_watcher.hpp"
#include "storage/instrumented_task_store.hpp"
#include "storage/task_store.hpp"
#include "worker/worker_pool.hpp"

namespace conveyor {

namespace asio = boost::asio;

namespace {

// SQLite and PostgreSQL calls block, so they get threads of their own. There
// are more threads than connections so that many submissions can wait in
// the same group commit at once.
constexpr int kDatabaseThreads = 16;
// Without a change feed, long polls and idle workers poll the database
// often; with one, they are woken at once and poll only as a fallback for
// announcements lost while the feed was reconnecting.
constexpr Millis kLongPollCheckInterval{200};
constexpr Millis kIdleClaimPoll{100};
constexpr Millis kFallbackPoll{1000};
constexpr Millis kFeedWait{1000};
constexpr Millis kFeedRetryMax{5000};
constexpr Millis kStartupWait{60'000};
// How often memory that malloc keeps free is returned to the system.
constexpr Millis kTrimInterval{10'000};
// Room in a request body for the JSON around the text: every byte of text
// may take up to six bytes when escaped (\u0000).
constexpr std::uint64_t kEnvelopeBytes = 64 * 1024;
// How long a tenant's count of PENDING tasks is reused before it is read
// again from the database.
constexpr Millis kPendingRefresh{1000};
// Descriptors kept free beside the HTTP connections: the listening socket,
// database files and connections, and the change feed.
constexpr rlim_t kReservedDescriptors = 256;

std::string_view ModeName(ServerMode mode) {
    switch (mode) {
        case ServerMode::kServe:
            return "serve";
        case ServerMode::kApi:
            return "api";
        case ServerMode::kWorker:
            return "worker";
        case ServerMode::kMigrate:
            return "migrate";
    }
    return "serve";
}

WorkerPool::Options MakeWorkerOptions(const Settings& settings, bool has_feed) {
    WorkerPool::Options options;
    options.idle_poll = has_feed ? kFallbackPoll : kIdleClaimPoll;
    options.retention = settings.retention;
    options.concurrency = settings.concurrency;
    options.simulated_delay = settings.simulated_delay;
    options.lease = settings.lease;
    options.retry_base = settings.retry_base;
    options.retry_cap = settings.retry_cap;
    options.task_timeout = settings.task_timeout;
    options.cancel_poll = std::min(Millis{500}, std::max(Millis{50}, settings.lease / 6));
    options.reap_interval = std::min(Millis{1000}, std::max(Millis{100}, settings.lease / 4));
    return options;
}

// Reads a change feed on its own thread and passes each change to the
// workers and long polls of this process.
class ChangeFeedReader {
  public:
    ChangeFeedReader(std::unique_ptr<ChangeFeed> feed, WorkerPool* workers,
                     http::TaskWatcher& watcher)
        : feed_(std::move(feed)), workers_(workers), watcher_(watcher) {
        thread_ = std::thread([this] { Run(); });
    }

    ~ChangeFeedReader() {
        stopping_ = true;
        feed_->Interrupt();
        thread_.join();
    }

    ChangeFeedReader(const ChangeFeedReader&) = delete;
    ChangeFeedReader& operator=(const ChangeFeedReader&) = delete;

  private:
    void Run() {
        Millis retry{100};
        while (!stopping_) {
            auto changes = feed_->Wait(kFeedWait);
            if (!changes.ok()) {
                if (stopping_) {
                    break;
                }
                log::Warn("main", "change feed failed; polling until it reconnects",
                          {{"error", changes.status().message()},
                           {"retry_ms", static_cast<std::int64_t>(retry.count())}});
                std::this_thread::sleep_for(retry);
                retry = std::min(retry * 2, kFeedRetryMax);
                continue;
            }
            retry = Millis{100};
            for (const Change& change : *changes) {
                Dispatch(change);
            }
        }
    }

    void Dispatch(const Change& change) {
        switch (change.kind) {
            case ChangeKind::kSubmitted:
                if (workers_ != nullptr) {
                    workers_->Wake();
                }
                break;
            case ChangeKind::kFinished:
                watcher_.NotifyFinished(change.task_id);
                break;
            case ChangeKind::kCancelled:
                if (workers_ != nullptr) {
                    workers_->CancelLocal(change.task_id);
                }
                break;
        }
    }

    std::unique_ptr<ChangeFeed> feed_;
    WorkerPool* workers_;
    http::TaskWatcher& watcher_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

// A timer that returns the memory malloc keeps free to the system, every
// kTrimInterval, on `pool`. glibc keeps freed memory in its arenas, so
// without it the process stays near the size of its largest burst of
// requests until it reuses that memory.
class MemoryTrimmer {
  public:
    MemoryTrimmer(asio::io_context& io, asio::thread_pool& pool) : timer_(io), pool_(pool) {
        Schedule();
    }

    MemoryTrimmer(const MemoryTrimmer&) = delete;
    MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  private:
    void Schedule() {
        timer_.expires_after(kTrimInterval);
        timer_.async_wait([this](const boost::system::error_code& error) {
            if (error) {
                return;
            }
            asio::post(pool_, [] { malloc_trim(0); });
            Schedule();
        });
    }

    asio::steady_timer timer_;
    asio::thread_pool& pool_;
};

// Returns the --database value fit for a log line: a password in the
// userinfo or in a password= query parameter is replaced by "xxxxx".
std::string RedactDatabaseUrl(std::string_view database) {
    auto parsed = boost::urls::parse_uri(database);
    if (!parsed) {
        // An unparsable value may still hold a password, so only the scheme
        // is shown.
        const std::size_t colon = database.find(':');
        return std::string(database.substr(0, colon)) + ":(not a valid URL; not shown)";
    }
    boost::urls::url url(*parsed);
    if (url.has_password()) {
        url.set_password("xxxxx");
    }
    for (auto param = url.params().begin(); param != url.params().end(); ++param) {
        if ((*param).key == "password") {
            param = url.params().replace(param, {"password", "xxxxx"});
        }
    }
    return std::string(url.buffer());
}

// The limits of the HTTP API after defaults: a negative rate limit or
// pending bound applies its default only with API keys.
struct ApiLimits {
    double rate_limit = 0;  // 0: off
    std::int64_t rate_burst = 1;
    std::int64_t max_pending = 0;             // 0: off
    std::int64_t max_waiting_per_tenant = 0;  // 0: off
};

ApiLimits ResolveApiLimits(const Settings& settings, bool authenticated) {
    ApiLimits limits;
    limits.rate_limit = settings.rate_limit >= 0 ? settings.rate_limit
                        : authenticated          ? kDefaultRateLimit
                                                 : 0;
    limits.rate_burst = settings.rate_burst > 0
                            ? settings.rate_burst
                            : std::max<std::int64_t>(
                                  1, static_cast<std::int64_t>(std::ceil(2 * limits.rate_limit)));
    limits.max_pending = settings.max_pending >= 0 ? settings.max_pending
                         : authenticated           ? kDefaultMaxPending
                                                   : 0;
    limits.max_waiting_per_tenant = settings.max_waiting_per_tenant >= 0
                                        ? settings.max_waiting_per_tenant
                                    : authenticated ? kDefaultMaxWaitingPerTenant
                                                    : 0;
    return limits;
}

// Returns how many long polls may wait at once across all tenants: nine
// tenths of the connection cap, so that waiting requests leave connections
// free for others, such as /healthz. Below 10 connections, all of them.
std::size_t MaxWaitingTotal(std::size_t max_connections) {
    return max_connections - max_connections / 10;
}

// Raises the soft limit on open files, up to the hard limit, so that
// `max_connections` fit beside kReservedDescriptors. Returns the number of
// connections that fit, which is lower than asked when the hard limit is.
std::size_t FitConnectionsToFileLimit(std::size_t max_connections) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return max_connections;
    }
    const rlim_t needed = static_cast<rlim_t>(max_connections) + kReservedDescriptors;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
        rlimit raised = limit;
        raised.rlim_cur =
            limit.rlim_max == RLIM_INFINITY ? needed : std::min(needed, limit.rlim_max);
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            limit = raised;
        }
    }
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= needed) {
        return max_connections;
    }
    const std::size_t fitting =
        limit.rlim_cur > kReservedDescriptors * 2
            ? static_cast<std::size_t>(limit.rlim_cur - kReservedDescriptors)
            : static_cast<std::size_t>(limit.rlim_cur / 2);
    log::Warn("http", "the open-file limit is below --max-connections; lowering the cap",
              {{"max_connections", max_connections},
               {"open_file_limit", static_cast<std::int64_t>(limit.rlim_cur)},
               {"effective_max_connections", fitting}});
    return std::max<std::size_t>(1, fitting);
}

// Logs whether authentication is on and which limits apply.
void LogAccessSettings(const Settings& settings, const std::optional<ApiKeySet>& api_keys,
                       const ApiLimits& limits, std::size_t max_connections) {
    if (api_keys) {
        log::Info("http", "authentication is on: every /v1 request needs an API key",
                  {{"api_keys_file", *settings.api_keys_file},
                   {"keys", api_keys->KeyCount()},
                   {"tenants", api_keys->TenantCount()}});
        if (api_keys->KeyCount() == 0) {
            log::Warn("http", "the API keys file contains no keys; every /v1 request gets 401",
                      {{"api_keys_file", *settings.api_keys_file}});
        }
    } else {
        log::Info("http", "authentication is off: every client is accepted as one tenant");
    }
    log::Info("http", "limits",
              {{"rate_limit", limits.rate_limit},
               {"rate_burst", limits.rate_burst},
               {"max_pending", limits.max_pending},
               {"max_waiting_per_tenant", limits.max_waiting_per_tenant},
               {"max_waiting", MaxWaitingTotal(max_connections)},
               {"max_body_bytes_per_tenant", settings.max_body_bytes_per_tenant},
               {"max_connections", max_connections},
               {"request_timeout_ms", static_cast<std::int64_t>(settings.request_timeout.count())},
               {"idle_timeout_ms", static_cast<std::int64_t>(settings.idle_timeout.count())}});
}

// Applies migrations, waiting out a database that cannot be reached yet
// (a process that starts while its database restarts, or before it is up)
// for up to kStartupWait.
Status MigrateWhenReachable(TaskStore& store) {
    const auto deadline = std::chrono::steady_clock::now() + kStartupWait;
    Millis pause{250};
    while (true) {
        Status migrated = store.Migrate();
        if (migrated.code() != StatusCode::kUnavailable ||
            std::chrono::steady_clock::now() + pause > deadline) {
            return migrated;
        }
        log::Warn("main", "database unreachable at start; retrying",
                  {{"error", migrated.message()},
                   {"retry_ms", static_cast<std::int64_t>(pause.count())}});
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, Millis{2000});
    }
}

}  // namespace

int RunServerCommand(ServerMode mode, const Settings& settings) {
    const bool serves_http = mode == ServerMode::kServe || mode == ServerMode::kApi;
    std::optional<ApiKeySet> api_keys;
    if (serves_http && settings.api_keys_file) {
        Result<ApiKeySet> loaded = ApiKeySet::Load(*settings.api_keys_file);
        if (!loaded.ok()) {
            log::Error("main", "cannot load the file named by --api-keys-file",
                       {{"error", loaded.status().message()}});
            return 1;
        }
        api_keys = std::move(*loaded);
    }

    auto opened = OpenTaskStore(settings.database);
    if (!opened.ok()) {
        log::Error("main", "cannot open the database named by --database",
                   {{"database", RedactDatabaseUrl(settings.database)},
                    {"error", opened.status().message()}});
        return 1;
    }
    std::unique_ptr<TaskStore> store = InstrumentTaskStore(std::move(opened).value());
    if (const Status migrated = MigrateWhenReachable(*store); !migrated.ok()) {
        log::Error("main", "database migration failed", {{"error", migrated.message()}});
        return 1;
    }
    if (mode == ServerMode::kMigrate) {
        log::Info("main", "migrations applied; the schema is current",
                  {{"database", RedactDatabaseUrl(settings.database)}});
        return 0;
    }
    auto cursor_key = store->CursorKey();
    if (!cursor_key.ok()) {
        log::Error("main", "cannot read the cursor key",
                   {{"error", cursor_key.status().message()}});
        return 1;
    }

    const int io_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    asio::io_context io(io_threads);
    asio::thread_pool db_pool(kDatabaseThreads);
    metrics::Service().db_pool_threads.Set(kDatabaseThreads);
    asio::thread_pool cpu_pool(static_cast<std::size_t>(io_threads));

    std::unique_ptr<ChangeFeed> feed = settings.poll_only ? nullptr : store->OpenChangeFeed();
    const bool has_feed = feed != nullptr;
    http::TaskWatcher watcher(asio::make_strand(io), db_pool, *store,
                              has_feed ? kFallbackPoll : kLongPollCheckInterval);
    // The group commits are declared after `io`, so they are destroyed
    // first: each destructor commits what is still queued and hands the
    // outcomes to the stopped io_context.
    std::unique_ptr<CompleteCommit> complete_commit;
    std::unique_ptr<WorkerPool> workers;
    if (mode == ServerMode::kServe || mode == ServerMode::kWorker) {
        complete_commit = MakeCompleteCommit(*store);
        workers = std::make_unique<WorkerPool>(
            io.get_executor(), db_pool, cpu_pool, *store, *complete_commit,
            MakeWorkerOptions(settings, has_feed),
            [&watcher](const std::string& task_id) { watcher.NotifyFinished(task_id); });
    }
    std::unique_ptr<ChangeFeedReader> feed_reader;
    if (has_feed) {
        feed_reader = std::make_unique<ChangeFeedReader>(std::move(feed), workers.get(), watcher);
    }

    http::ApiHooks hooks;
    if (workers) {
        hooks.on_submitted = [&workers] { workers->Wake(); };
        hooks.on_cancelled = [&workers](const std::string& task_id) {
            workers->CancelLocal(task_id);
        };
    }
    http::SubmissionLimits limits;
    limits.max_text_bytes = settings.max_text_bytes;
    limits.default_max_attempts = settings.max_attempts;
    limits.fault_injection = settings.enable_fault_injection;
    const ApiLimits api_limits = ResolveApiLimits(settings, api_keys.has_value());
    std::optional<RateLimiter> rate_limiter;
    std::optional<http::PendingLimit> pending_limit;
    http::ApiGuards guards;
    guards.api_keys = api_keys ? &*api_keys : nullptr;
    if (api_limits.rate_limit > 0) {
        guards.rate_limiter = &rate_limiter.emplace(api_limits.rate_limit, api_limits.rate_burst);
    }
    if (api_limits.max_pending > 0) {
        guards.pending_limit =
            &pending_limit.emplace(*store, db_pool, api_limits.max_pending, kPendingRefresh);
        guards.max_pending = api_limits.max_pending;
    }
    const std::size_t max_connections =
        serves_http ? FitConnectionsToFileLimit(static_cast<std::size_t>(settings.max_connections))
                    : static_cast<std::size_t>(settings.max_connections);
    http::WaitLimit wait_limit(static_cast<std::size_t>(api_limits.max_waiting_per_tenant),
                               MaxWaitingTotal(max_connections));
    guards.wait_limit = &wait_limit;
    const std::unique_ptr<CreateCommit> create_commit = MakeCreateCommit(*store);
    http::Api api(*store, *create_commit, db_pool, watcher, *cursor_key, limits, std::move(hooks),
                  guards);

    std::unique_ptr<http::HttpServer> server;

    // Signals are caught before the listening line is logged, so a SIGTERM
    // sent as soon as the server is up already means a clean shutdown.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& error, int signal_number) {
        if (error) {
            return;
        }
        log::Info("main", "shutting down", {{"signal", signal_number}});
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                if (server) {
                    server->StopAccepting();
                }
                watcher.Stop();
                if (workers) {
                    co_await workers->Shutdown(settings.shutdown_grace);
                }
                if (server) {
                    co_await server->WaitForIdle(std::min(settings.shutdown_grace, Millis{5000}));
                }
                io.stop();
            },
            asio::detached);
    });

    http::BodyBudget body_budget(static_cast<std::uint64_t>(settings.max_body_bytes_per_tenant));
    http::ServerLimits server_limits;
    server_limits.body_budget = &body_budget;
    server_limits.max_body_bytes =
        static_cast<std::uint64_t>(settings.max_text_bytes) * 6 + kEnvelopeBytes;
    server_limits.request_timeout = settings.request_timeout;
    server_limits.idle_timeout = settings.idle_timeout;
    if (serves_http) {
        server_limits.max_connections = max_connections;
        server = std::make_unique<http::HttpServer>(io.get_executor(), api, server_limits);
        auto bound = server->Listen(settings.listen);
        if (!bound.ok()) {
            log::Error("main", "cannot listen", {{"error", bound.status().message()}});
            return 1;
        }
        server->Start();
        watcher.Start();
        log::Info("http", "listening",
                  {{"address", server->BoundHost()},
                   {"port", static_cast<int>(server->BoundPort())},
                   {"mode", ModeName(mode)}});
        LogAccessSettings(settings, api_keys, api_limits, server_limits.max_connections);
    } else if (mode == ServerMode::kWorker && settings.metrics_listen) {
        api.ServeProbesOnly();
        server = std::make_unique<http::HttpServer>(io.get_executor(), api, server_limits);
        auto bound = server->Listen(*settings.metrics_listen);
        if (!bound.ok()) {
            log::Error("main", "cannot listen on --metrics-listen",
                       {{"error", bound.status().message()}});
            return 1;
        }
        server->Start();
        log::Info("http", "listening",
                  {{"address", server->BoundHost()},
                   {"port", static_cast<int>(server->BoundPort())},
                   {"mode", ModeName(mode)}});
    }
    if (workers) {
        workers->Start();
    }
    if (settings.enable_fault_injection) {
        log::Warn("main", "fault injection is on; use it only in tests");
    }

    const MemoryTrimmer trimmer(io, cpu_pool);
    std::vector<std::thread> threads;
    for (int i = 1; i < io_threads; ++i) {
        threads.emplace_back([&io] { io.run(); });
    }
    io.run();
    for (auto& thread : threads) {
        thread.join();
    }
    feed_reader.reset();
    db_pool.join();
    cpu_pool.join();
    log::Info("main", "stopped");
    return 0;
}

}  // namespace conveyor
