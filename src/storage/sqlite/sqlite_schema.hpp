#pragma once

#include <string>

#include "core/status.hpp"
#include "core/time.hpp"
#include "storage/sqlite/sqlite_connection.hpp"

namespace conveyor::sqlite {

// Returns the highest migration version in this build.
int LatestSchemaVersion();

// Applies every migration that `connection`'s database lacks, each in its
// own IMMEDIATE transaction that first checks schema_migrations, so running
// it again, or from two processes at once, applies each step exactly once.
// Then stores a cursor-signing key unless one exists.
Status ApplyMigrations(Connection& connection, UnixMillis now);

// The name of the meta row that contains the cursor-signing key, in hex.
inline constexpr char kCursorKeyName[] = "cursor_key";

// The number of random bytes in a cursor-signing key.
inline constexpr std::size_t kCursorKeyBytes = 32;

}  // namespace conveyor::sqlite
