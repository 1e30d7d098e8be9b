// The conveyor program: server commands (serve, api, worker, migrate),
// client commands (submit, get, list, cancel, retry) and `keys add`.

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>

#include "app/server_command.hpp"
#include "cli/client_commands.hpp"
#include "cli/keys_command.hpp"
#include "core/duration.hpp"
#include "core/log.hpp"
#include "core/settings.hpp"

namespace {

using conveyor::DurationRange;
using conveyor::Millis;
using conveyor::Settings;

constexpr int kUsageError = 2;

// Flags in text form where they need parsing after CLI11 is done.
struct RawFlags {
    std::string simulated_delay = "5s..10s";
    std::string lease = "30s";
    std::string retry_base = "1s";
    std::string retry_cap = "5m";
    std::string task_timeout = "5m";
    std::string shutdown_grace = "30s";
    std::string retention = "168h";
    std::string request_timeout = "30s";
    std::string idle_timeout = "60s";
};

std::string CheckDuration(const std::string& text) {
    return conveyor::ParseDuration(text) ? ""
                                         : "expected a duration such as 250ms, 5s, 2m, 1h or 0";
}

// Idempotency keys must live at least 24 hours, and they go with their task.
std::string CheckRetention(const std::string& text) {
    const auto retention = conveyor::ParseDuration(text);
    if (!retention) {
        return "expected a duration such as 168h";
    }
    return *retention >= Millis{24 * 3'600'000} ? "" : "must be at least 24h";
}

std::string CheckPositiveDuration(const std::string& text) {
    const auto duration = conveyor::ParseDuration(text);
    if (!duration) {
        return "expected a duration such as 250ms, 5s or 2m";
    }
    return duration->count() > 0 ? "" : "must be longer than 0";
}

std::string CheckDurationRange(const std::string& text) {
    return conveyor::ParseDurationRange(text)
               ? ""
               : "expected a duration or a range MIN..MAX such as 5s..10s, with MIN <= MAX";
}

void AddLimitFlags(CLI::App& command, Settings& settings, RawFlags& raw) {
    auto env = [](const char* flag) { return std::string("CONVEYOR_") + flag; };
    command
        .add_option("--rate-limit", settings.rate_limit,
                    "Requests per second of each tenant, fractions allowed; 0 turns it off "
                    "(default: 1000 with --api-keys-file, off without)")
        ->envname(env("RATE_LIMIT"))
        ->check(CLI::NonNegativeNumber);
    command
        .add_option("--rate-burst", settings.rate_burst,
                    "Requests a tenant may send at once before --rate-limit paces it "
                    "(default: twice --rate-limit)")
        ->envname(env("RATE_BURST"))
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000'000}));
    command
        .add_option("--max-pending", settings.max_pending,
                    "PENDING tasks of each tenant; 0 turns it off "
                    "(default: 100000 with --api-keys-file, off without)")
        ->envname(env("MAX_PENDING"))
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1'000'000'000}));
    command
        .add_option("--max-waiting-per-tenant", settings.max_waiting_per_tenant,
                    "Long polls (GET /v1/tasks/{id}?wait=) of each tenant that wait at once; "
                    "0 turns it off (default: 1000 with --api-keys-file, off without)")
        ->envname(env("MAX_WAITING_PER_TENANT"))
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1'000'000'000}));
    command
        .add_option("--max-body-bytes-per-tenant", settings.max_body_bytes_per_tenant,
                    "Bytes of request and response bodies that each tenant may have in the server "
                    "at once (received, handled or not yet read by the client); 0 turns it off")
        ->envname(env("MAX_BODY_BYTES_PER_TENANT"))
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1'000'000'000'000}))
        ->capture_default_str();
    command
        .add_option("--max-connections", settings.max_connections,
                    "Open HTTP connections; at the cap, a new one replaces the connection that has "
                    "waited longest for a request, or waits while all are busy")
        ->envname(env("MAX_CONNECTIONS"))
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}))
        ->capture_default_str();
    command
        .add_option("--request-timeout", raw.request_timeout,
                    "Time to read one request from its first byte, and to write one response")
        ->envname(env("REQUEST_TIMEOUT"))
        ->check(CheckPositiveDuration)
        ->capture_default_str();
    command
        .add_option("--idle-timeout", raw.idle_timeout,
                    "Time a connection may wait for the first byte of its next request")
        ->envname(env("IDLE_TIMEOUT"))
        ->check(CheckPositiveDuration)
        ->capture_default_str();
}

void AddServerFlags(CLI::App& command, Settings& settings, RawFlags& raw) {
    auto env = [](const char* flag) { return std::string("CONVEYOR_") + flag; };
    command
        .add_option("--listen", settings.listen,
                    "Address and port to serve HTTP on; port 0 picks a free one")
        ->envname(env("LISTEN"))
        ->capture_default_str();
    command
        .add_option("--database", settings.database, "Database: sqlite:PATH or a postgresql:// URL")
        ->envname(env("DATABASE"))
        ->capture_default_str();
    command
        .add_option("--concurrency", settings.concurrency, "Tasks one worker process runs at once")
        ->envname(env("CONCURRENCY"))
        ->check(CLI::Range(1, 1'000'000))
        ->capture_default_str();
    command
        .add_option("--simulated-delay", raw.simulated_delay,
                    "Wait before text.analyze works: a duration or MIN..MAX")
        ->envname(env("SIMULATED_DELAY"))
        ->check(CheckDurationRange)
        ->capture_default_str();
    command.add_option("--lease", raw.lease, "Lease length of a claimed task")
        ->envname(env("LEASE"))
        ->check(CheckDuration)
        ->capture_default_str();
    command
        .add_option("--max-attempts", settings.max_attempts,
                    "Attempts for tasks that do not set max_attempts (1 to 20)")
        ->envname(env("MAX_ATTEMPTS"))
        ->check(CLI::Range(1, 20))
        ->capture_default_str();
    command.add_option("--retry-base", raw.retry_base, "Base of the exponential retry back-off")
        ->envname(env("RETRY_BASE"))
        ->check(CheckDuration)
        ->capture_default_str();
    command.add_option("--retry-cap", raw.retry_cap, "Largest retry back-off")
        ->envname(env("RETRY_CAP"))
        ->check(CheckDuration)
        ->capture_default_str();
    command.add_option("--task-timeout", raw.task_timeout, "Time limit of one attempt")
        ->envname(env("TASK_TIMEOUT"))
        ->check(CheckDuration)
        ->capture_default_str();
    command
        .add_option("--shutdown-grace", raw.shutdown_grace,
                    "Time running tasks get to finish after SIGTERM before they are handed back")
        ->envname(env("SHUTDOWN_GRACE"))
        ->check(CheckDuration)
        ->capture_default_str();
    command
        .add_option("--max-text-bytes", settings.max_text_bytes,
                    "Largest accepted text, in bytes of UTF-8")
        ->envname(env("MAX_TEXT_BYTES"))
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 30))
        ->capture_default_str();
    command
        .add_option("--api-keys-file", settings.api_keys_file,
                    "File of tenants and API keys; enables authentication")
        ->envname(env("API_KEYS_FILE"));
    command
        .add_flag("--enable-fault-injection", settings.enable_fault_injection,
                  "Accept the fault-injection task parameters (tests only)")
        ->envname(env("ENABLE_FAULT_INJECTION"));
    command
        .add_option("--log-format", settings.log_format,
                    "text or json; default text on a terminal, json otherwise")
        ->envname(env("LOG_FORMAT"))
        ->check(CLI::IsMember({"text", "json"}));
    command.add_option("--log-level", settings.log_level, "debug, info, warn or error")
        ->envname(env("LOG_LEVEL"))
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
        ->capture_default_str();
    command
        .add_option("--retention", raw.retention,
                    "How long finished tasks are kept before they are deleted (at least 24h)")
        ->envname(env("RETENTION"))
        ->check(CheckRetention)
        ->capture_default_str();
    command
        .add_flag("--poll-only", settings.poll_only,
                  "Never LISTEN for changes; poll instead (for transaction-pooling proxies)")
        ->envname(env("POLL_ONLY"));
    AddLimitFlags(command, settings, raw);
    command
        .add_option("--metrics-listen", settings.metrics_listen,
                    "worker only: address and port to serve /metrics and /healthz on")
        ->envname(env("METRICS_LISTEN"));
}

void ApplyRawFlags(const RawFlags& raw, Settings& settings) {
    settings.simulated_delay = *conveyor::ParseDurationRange(raw.simulated_delay);
    settings.lease = *conveyor::ParseDuration(raw.lease);
    settings.retry_base = *conveyor::ParseDuration(raw.retry_base);
    settings.retry_cap = *conveyor::ParseDuration(raw.retry_cap);
    settings.task_timeout = *conveyor::ParseDuration(raw.task_timeout);
    settings.shutdown_grace = *conveyor::ParseDuration(raw.shutdown_grace);
    settings.retention = *conveyor::ParseDuration(raw.retention);
    settings.request_timeout = *conveyor::ParseDuration(raw.request_timeout);
    settings.idle_timeout = *conveyor::ParseDuration(raw.idle_timeout);
}

// Tunes glibc's malloc for a server with many threads.
// - Arenas: at most two per core. The default, eight per core, gives each
//   thread an arena of its own, and each keeps a few hundred KiB resident:
//   a third of an idle server's memory. One per core made submissions about
//   a quarter slower through lock contention on a 2-core machine.
// - Trimming: only beyond 32 MiB of free memory at the top of an arena.
//   With fewer arenas, each one's top grows and shrinks with every burst.
//   At the default threshold (128 KiB), the frees after a submission burst
//   returned pages with madvise, and page faults took them back. That was
//   a quarter of the server's CPU time in a perf profile.
// The MALLOC_ARENA_MAX and MALLOC_TRIM_THRESHOLD_ environment variables
// still win when set.
void TuneMalloc() {
    if (std::getenv("MALLOC_ARENA_MAX") == nullptr) {
        const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
        mallopt(M_ARENA_MAX, static_cast<int>(2 * cores));
    }
    if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) {
        mallopt(M_TRIM_THRESHOLD, 32 << 20);
    }
}

}  // namespace

int main(int argc, char** argv) {
    TuneMalloc();
    if (argc >= 2 && conveyor::cli::IsClientCommand(argv[1])) {
        return conveyor::cli::RunClientCommand(argc, argv);
    }
    if (argc >= 2 && std::string_view(argv[1]) == "keys") {
        return conveyor::cli::RunKeysCommand(argc, argv);
    }

    CLI::App app{"Conveyor: an asynchronous task-processing service."};
    app.footer(
        "Client commands, which speak HTTP to a running server:\n"
        "  submit, get, list, cancel, retry   (conveyor COMMAND --help for each)\n"
        "API keys:\n"
        "  keys add --tenant NAME --api-keys-file PATH   (conveyor keys --help)");
    app.require_subcommand(1);

    struct CommandInfo {
        const char* name;
        const char* description;
        conveyor::ServerMode mode;
    };
    const CommandInfo commands[] = {
        {"serve", "Run the HTTP API and workers in one process", conveyor::ServerMode::kServe},
        {"api", "Run the HTTP API alone", conveyor::ServerMode::kApi},
        {"worker", "Run workers alone, claiming from the shared database",
         conveyor::ServerMode::kWorker},
        {"migrate", "Create or upgrade the database schema, then exit",
         conveyor::ServerMode::kMigrate},
    };
    // Each command binds its own copy of the settings: CLI11 applies
    // environment variables to commands that were not chosen too, and one
    // shared copy would let those overwrite the chosen command's flags.
    constexpr std::size_t kCommandCount = std::size(commands);
    std::array<Settings, kCommandCount> settings;
    std::array<RawFlags, kCommandCount> raw;
    for (std::size_t i = 0; i < kCommandCount; ++i) {
        AddServerFlags(*app.add_subcommand(commands[i].name, commands[i].description), settings[i],
                       raw[i]);
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        const int status = app.exit(error);
        return status == 0 ? 0 : kUsageError;
    }
    for (std::size_t i = 0; i < kCommandCount; ++i) {
        if (!app.got_subcommand(commands[i].name)) {
            continue;
        }
        Settings& chosen = settings[i];
        ApplyRawFlags(raw[i], chosen);
        if (!conveyor::log::Init(chosen.log_format, chosen.log_level)) {
            std::cerr << "conveyor: invalid --log-format or --log-level\n";
            return kUsageError;
        }
        return conveyor::RunServerCommand(commands[i].mode, chosen);
    }
    return kUsageError;
}
