#include <memory>
#include <string>
#include <string_view>

#include "storage/postgres/postgres_task_store.hpp"
#include "storage/sqlite/sqlite_task_store.hpp"
#include "storage/task_store.hpp"

namespace conveyor {

Result<std::unique_ptr<TaskStore>> OpenTaskStore(std::string_view database_url) {
    constexpr std::string_view kSqlitePrefix = "sqlite:";
    if (database_url.starts_with(kSqlitePrefix)) {
        const std::string_view path = database_url.substr(kSqlitePrefix.size());
        if (path.empty()) {
            return Status::InvalidArgument(
                "the database URL 'sqlite:' names no file; write sqlite:PATH, for example "
                "sqlite:conveyor.db");
        }
        Result<std::unique_ptr<SqliteTaskStore>> store =
            SqliteTaskStore::Open(SqliteOptions{.path = std::string(path)});
        if (!store.ok()) {
            return store.status();
        }
        return std::unique_ptr<TaskStore>(std::move(*store));
    }

    if (database_url.starts_with("postgresql://") || database_url.starts_with("postgres://")) {
        Result<std::unique_ptr<PostgresTaskStore>> store =
            PostgresTaskStore::Open(PostgresOptions{.url = std::string(database_url)});
        if (!store.ok()) {
            return store.status();
        }
        return std::unique_ptr<TaskStore>(std::move(*store));
    }

    // Only the scheme goes into the message: the rest of a URL may contain a
    // password.
    const std::string_view scheme = database_url.substr(0, database_url.find(':'));
    return Status::InvalidArgument("unsupported database URL scheme '" + std::string(scheme) +
                                   "'; expected sqlite:PATH or postgresql://...");
}

}  // namespace conveyor
