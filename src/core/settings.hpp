#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/duration.hpp"

namespace conveyor {

// Settings of the server commands (serve, api, worker, migrate). Each field
// is one command-line flag that also reads a CONVEYOR_* variable; main.cpp
// binds them and docs/configuration.md lists them.
struct Settings {
    std::string listen = "127.0.0.1:8080";
    std::string database = "sqlite:conveyor.db";
    int concurrency = 1000;
    DurationRange simulated_delay{Millis{5000}, Millis{10000}};
    Millis lease{30'000};
    int max_attempts = 3;
    Millis retry_base{1000};
    Millis retry_cap{300'000};
    Millis task_timeout{300'000};
    Millis shutdown_grace{30'000};
    std::int64_t max_text_bytes = 1'048'576;
    std::optional<std::string> api_keys_file;
    bool enable_fault_injection = false;
    std::string log_format;  // "text" or "json"; empty means decide by the terminal
    std::string log_level = "info";
    Millis retention{7 * 24 * 3'600'000};  // finished tasks are deleted after this
    bool poll_only = false;                // never LISTEN; find work and finished tasks by polling
    // Limits of the HTTP API. A negative rate_limit or max_pending takes the
    // default, which applies only with api_keys_file; 0 turns either off.
    double rate_limit = -1;         // requests per second of each tenant
    std::int64_t rate_burst = 0;    // requests a tenant may send at once; 0: twice rate_limit
    std::int64_t max_pending = -1;  // PENDING tasks of each tenant
    // Long polls of each tenant that wait at once; negative takes the
    // default, which applies only with api_keys_file; 0 turns it off.
    std::int64_t max_waiting_per_tenant = -1;
    // Bytes of request bodies that each tenant has in the server at once;
    // 0 turns it off.
    std::int64_t max_body_bytes_per_tenant = 64 * 1024 * 1024;
    std::int64_t max_connections = 10'000;
    Millis request_timeout{30'000};
    Millis idle_timeout{60'000};
    // Address on which a worker process serves /metrics and /healthz, none by
    // default.
    std::optional<std::string> metrics_listen;
};

// The defaults that apply with --api-keys-file when --rate-limit,
// --max-pending and --max-waiting-per-tenant are not given.
inline constexpr double kDefaultRateLimit = 1000;
inline constexpr std::int64_t kDefaultMaxPending = 100'000;
inline constexpr std::int64_t kDefaultMaxWaitingPerTenant = 1'000;

}  // namespace conveyor
