#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.hpp"

// A throwaway PostgreSQL server for tests. It is a test-only library: the
// product never links it.
namespace conveyor::postgres_test {

// One database in a TestCluster.
struct TestDatabase {
    std::string name;
    std::string url;  // postgresql:// URL that reaches it over the Unix socket
};

// A PostgreSQL cluster in a fresh temporary directory, served by a
// `postgres` process that this object started and owns. The server listens
// only on a Unix socket inside that directory (TCP is off), so nothing
// outside the machine, and no other cluster, can reach or clash with it.
//
// The data directory is a copy of a template that initdb creates once per
// user and set of server binaries, because initdb takes over a second and
// CTest runs each test in a process of its own. The template lives beside
// the temporary directories, named conveyor-pg-template-*, and no server
// ever runs on it. Durability is off (fsync, full-page writes and synchronous
// commit), because the data lives only as long as the test.
//
// PostgreSQL refuses to run as root, so when the test runs as root, initdb
// and postgres run as the `postgres` system user (which Debian's postgresql
// package creates), in a directory owned by that user.
//
// The server binaries come from the CONVEYOR_POSTGRES_BINDIR environment
// variable, or else from `pg_config --bindir` at build time.
//
// Not thread-safe: one thread starts, restarts and stops the cluster.
// Several threads may use the databases through their own connections.
class TestCluster {
  public:
    // Creates the directory, runs initdb and starts the server. kUnavailable
    // with the tail of the server's log when any step fails.
    static Result<std::unique_ptr<TestCluster>> Start();

    // Stops the server if it runs and removes the directory.
    ~TestCluster();
    TestCluster(const TestCluster&) = delete;
    TestCluster& operator=(const TestCluster&) = delete;

    // Stops the server with a fast shutdown (SIGINT to the process this
    // object started), which ends open sessions, and waits for it to exit.
    // SIGTERM would be a smart shutdown, which waits for every client to
    // disconnect, and the stores under test keep their pooled connections.
    Status Stop();

    // Starts the server again on the same data directory and waits until it
    // accepts connections.
    Status StartServer();

    // Stops and starts the server.
    Status Restart();

    // Creates an empty database with a name not used before in this cluster.
    Result<TestDatabase> CreateDatabase();

    // Drops a database, ending any sessions still connected to it.
    Status DropDatabase(const std::string& name);

    // Returns the URL of `database` in this cluster.
    std::string UrlFor(const std::string& database) const;

    const std::filesystem::path& directory() const { return directory_; }

  private:
    // The account that initdb and postgres run as, when it is not ours.
    struct Account {
        uid_t uid;
        gid_t gid;
    };

    TestCluster(std::filesystem::path directory, std::filesystem::path bindir,
                std::optional<Account> account);

    // Returns the cached data directory made by initdb, creating it first
    // when it is missing.
    Result<std::filesystem::path> TemplateDataDirectory();
    // Runs initdb to create `parent`/data.
    Status InitializeDataDirectory(const std::filesystem::path& parent);
    // Copies the template into this cluster's directory, owned by the
    // account the server runs as.
    Status CopyDataDirectory(const std::filesystem::path& source);
    Status WaitUntilAccepting();
    // Starts `program` from the server binaries in `working_directory`,
    // with its output in `log_file`, as the server's account.
    Result<pid_t> Spawn(const std::string& program, const std::vector<std::string>& arguments,
                        const std::filesystem::path& working_directory,
                        const std::filesystem::path& log_file);
    Status ExecuteAdmin(const std::string& sql);

    std::filesystem::path directory_;
    std::filesystem::path bindir_;
    std::optional<Account> account_;
    pid_t server_pid_ = -1;
    int databases_created_ = 0;
};

}  // namespace conveyor::postgres_test
