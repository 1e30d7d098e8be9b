#pragma once

#include <cstddef>

#include "core/status.hpp"
#include "core/time.hpp"
#include "storage/postgres/postgres_connection.hpp"

namespace conveyor::postgres {

// Returns the highest migration version in this build.
int LatestSchemaVersion();

// Applies every migration that the database lacks, then stores a
// cursor-signing key unless one exists, all in one transaction under a
// transaction-level advisory lock. Processes that migrate at the same moment
// wait for each other on that lock, and each reads schema_migrations only
// once it holds the lock, so each step runs once and every process reads
// the same key. A failed step rolls the whole transaction back.
Status ApplyMigrations(Connection& connection, UnixMillis now);

// The name of the meta row that contains the cursor-signing key as bytea.
inline constexpr char kCursorKeyName[] = "cursor_key";

// The number of random bytes in a cursor-signing key.
inline constexpr std::size_t kCursorKeyBytes = 32;

}  // namespace conveyor::postgres
