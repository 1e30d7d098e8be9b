#pragma once

#include "core/settings.hpp"

namespace conveyor {

enum class ServerMode {
    kServe,    // HTTP API and workers in one process
    kApi,      // HTTP API only
    kWorker,   // workers only
    kMigrate,  // apply migrations and exit
};

// Runs a server command until SIGTERM or SIGINT and returns the process
// exit status: 0 after a clean shutdown, 1 when start-up fails.
int RunServerCommand(ServerMode mode, const Settings& settings);

}  // namespace conveyor
