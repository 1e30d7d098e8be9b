#include "storage/postgres/test_cluster.hpp"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

namespace conveyor::postgres_test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The socket file is named after the port, inside the cluster's own
// directory, so any port number is free there.
constexpr int kPort = 5432;
constexpr char kSuperuser[] = "postgres";
constexpr auto kInitdbLimit = 120s;
constexpr auto kStartLimit = 60s;
constexpr auto kFastShutdownLimit = 30s;
constexpr auto kImmediateShutdownLimit = 10s;
constexpr auto kPollInterval = 20ms;
// A Unix socket path is at most 107 bytes long on Linux.
constexpr std::size_t kMaxSocketDirectoryLength = 80;

std::filesystem::path FindBindir() {
    if (const char* configured = std::getenv("CONVEYOR_POSTGRES_BINDIR");
        configured != nullptr && *configured != '\0') {
        return configured;
    }
    return CONVEYOR_POSTGRES_BINDIR;
}

// Returns the last `bytes` bytes of a log file, for error messages.
std::string LogTail(const std::filesystem::path& file, std::size_t bytes = 2000) {
    std::ifstream in(file, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() <= bytes ? text : text.substr(text.size() - bytes);
}

std::string DescribeExit(int wait_status) {
    if (WIFEXITED(wait_status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
    }
    if (WIFSIGNALED(wait_status)) {
        return "was killed by signal " + std::to_string(WTERMSIG(wait_status));
    }
    return "stopped";
}

// Waits up to `limit` for `pid` to exit. Returns its wait status, or
// nullopt when it still runs.
std::optional<int> WaitForExit(pid_t pid, Clock::duration limit) {
    const Clock::time_point deadline = Clock::now() + limit;
    while (true) {
        int wait_status = 0;
        const pid_t done = waitpid(pid, &wait_status, WNOHANG);
        if (done == pid || (done < 0 && errno != EINTR)) {
            return wait_status;
        }
        if (Clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(kPollInterval);
    }
}

std::filesystem::path TemporaryBase() {
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (base.string().size() > kMaxSocketDirectoryLength) {
        base = "/tmp";
    }
    return base;
}

std::filesystem::path MakeTemporaryDirectory() {
    std::string pattern = (TemporaryBase() / "conveyor-pg-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
        return {};
    }
    return pattern;
}

}  // namespace

TestCluster::TestCluster(std::filesystem::path directory, std::filesystem::path bindir,
                         std::optional<Account> account)
    : directory_(std::move(directory)), bindir_(std::move(bindir)), account_(account) {}

Result<std::unique_ptr<TestCluster>> TestCluster::Start() {
    std::optional<Account> account;
    if (geteuid() == 0) {
        const passwd* entry = getpwnam("postgres");
        if (entry == nullptr) {
            return Status::Unavailable(
                "PostgreSQL refuses to run as root and there is no 'postgres' user to run it "
                "as; install Debian's postgresql package or run the tests as another user");
        }
        account = Account{entry->pw_uid, entry->pw_gid};
    }

    const std::filesystem::path directory = MakeTemporaryDirectory();
    if (directory.empty()) {
        return Status::Unavailable(std::string("mkdtemp failed: ") + std::strerror(errno));
    }
    std::unique_ptr<TestCluster> cluster(new TestCluster(directory, FindBindir(), account));
    if (account && chown(directory.c_str(), account->uid, account->gid) != 0) {
        return Status::Unavailable("cannot hand " + directory.string() +
                                   " to the postgres user: " + std::strerror(errno));
    }
    Result<std::filesystem::path> data_template = cluster->TemplateDataDirectory();
    if (!data_template.ok()) {
        return data_template.status();
    }
    if (Status status = cluster->CopyDataDirectory(*data_template); !status.ok()) {
        return status;
    }
    if (Status status = cluster->StartServer(); !status.ok()) {
        return status;
    }
    return cluster;
}

TestCluster::~TestCluster() {
    if (Status status = Stop(); !status.ok()) {
        std::fprintf(stderr, "test cluster: %s\n", status.message().c_str());
    }
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
}

Result<pid_t> TestCluster::Spawn(const std::string& program,
                                 const std::vector<std::string>& arguments,
                                 const std::filesystem::path& working_directory,
                                 const std::filesystem::path& log_file) {
    // Everything the child needs is prepared before fork(), because a child
    // of a multi-threaded process may call only async-signal-safe functions.
    const std::string path = (bindir_ / program).string();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (const std::string& argument : arguments) {
        argv.push_back(const_cast<char*>(argument.c_str()));
    }
    argv.push_back(nullptr);
    const std::string log_path = log_file.string();
    const std::string cwd = working_directory.string();
    const pid_t parent = getpid();

    const pid_t pid = fork();
    if (pid < 0) {
        return Status::Unavailable(std::string("fork failed: ") + std::strerror(errno));
    }
    if (pid > 0) {
        return pid;
    }

    const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int null_fd = open("/dev/null", O_RDONLY);
    if (log_fd < 0 || null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
        dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0 ||
        chdir(cwd.c_str()) != 0) {
        _exit(126);
    }
    if (account_ &&
        (setgroups(0, nullptr) != 0 || setgid(account_->gid) != 0 || setuid(account_->uid) != 0)) {
        _exit(126);
    }
    // The server dies with the test process, even when that is killed. The
    // setting must follow setuid(), which clears it.
    if (prctl(PR_SET_PDEATHSIG, SIGQUIT) != 0 || getppid() != parent) {
        _exit(126);
    }
    execv(argv[0], argv.data());
    _exit(127);
}

Result<std::filesystem::path> TestCluster::TemplateDataDirectory() {
    // One template per layout (bump kTemplateLayout when the initdb options
    // change), user and set of server binaries.
    constexpr int kTemplateLayout = 1;
    const std::string key = std::to_string(kTemplateLayout) + "-" + std::to_string(geteuid()) +
                            "-" + std::to_string(std::hash<std::string>()(bindir_.string()));
    const std::filesystem::path cache = TemporaryBase() / ("conveyor-pg-template-" + key);
    if (std::filesystem::exists(cache / "data" / "PG_VERSION")) {
        return cache / "data";
    }

    // initdb runs in a staging directory that is renamed into place only
    // when complete, so a crash or a process racing this one never leaves
    // a half-made template under the cache name.
    const std::filesystem::path staging =
        TemporaryBase() / ("conveyor-pg-template-" + key + ".staging-" + std::to_string(getpid()));
    std::error_code error;
    std::filesystem::remove_all(staging, error);
    if (!std::filesystem::create_directory(staging, error)) {
        return Status::Unavailable("cannot create " + staging.string() + ": " + error.message());
    }
    if (account_ && chown(staging.c_str(), account_->uid, account_->gid) != 0) {
        std::filesystem::remove_all(staging, error);
        return Status::Unavailable("cannot hand " + staging.string() +
                                   " to the postgres user: " + std::strerror(errno));
    }
    if (Status status = InitializeDataDirectory(staging); !status.ok()) {
        std::filesystem::remove_all(staging, error);
        return status;
    }
    std::filesystem::rename(staging, cache, error);
    if (error) {
        // Another process finished first; its template serves as well.
        std::filesystem::remove_all(staging, error);
    }
    if (!std::filesystem::exists(cache / "data" / "PG_VERSION")) {
        return Status::Unavailable("the template data directory " + cache.string() +
                                   " is incomplete");
    }
    return cache / "data";
}

Status TestCluster::InitializeDataDirectory(const std::filesystem::path& parent) {
    const std::filesystem::path log_file = parent / "initdb.log";
    Result<pid_t> pid = Spawn("initdb",
                              {"-D", (parent / "data").string(), "-U", kSuperuser, "-A", "trust",
                               "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions",
                               // 1 MB WAL segments instead of 16 MB make each
                               // copy of the template smaller.
                               "--wal-segsize=1"},
                              parent, log_file);
    if (!pid.ok()) {
        return pid.status();
    }
    const std::optional<int> wait_status = WaitForExit(*pid, kInitdbLimit);
    if (!wait_status) {
        kill(*pid, SIGKILL);
        WaitForExit(*pid, kImmediateShutdownLimit);
        return Status::Unavailable("initdb did not finish within 120 s: " + LogTail(log_file));
    }
    if (!WIFEXITED(*wait_status) || WEXITSTATUS(*wait_status) != 0) {
        return Status::Unavailable("initdb " + DescribeExit(*wait_status) + ": " +
                                   LogTail(log_file));
    }
    return Status::Ok();
}

Status TestCluster::CopyDataDirectory(const std::filesystem::path& source) {
    const std::filesystem::path target = directory_ / "data";
    std::error_code error;
    std::filesystem::copy(source, target, std::filesystem::copy_options::recursive, error);
    if (error) {
        return Status::Unavailable("cannot copy " + source.string() + " to " + target.string() +
                                   ": " + error.message());
    }
    // The server refuses a data directory that others can read.
    std::filesystem::permissions(target, std::filesystem::perms::owner_all, error);
    if (!account_) {
        return Status::Ok();
    }
    if (lchown(target.c_str(), account_->uid, account_->gid) != 0) {
        return Status::Unavailable("cannot hand " + target.string() + " to the postgres user");
    }
    for (const auto& entry : std::filesystem::recursive_directory_iterator(target)) {
        if (lchown(entry.path().c_str(), account_->uid, account_->gid) != 0) {
            return Status::Unavailable("cannot hand " + entry.path().string() +
                                       " to the postgres user");
        }
    }
    return Status::Ok();
}

Status TestCluster::StartServer() {
    if (server_pid_ > 0) {
        return Status::Ok();
    }
    Result<pid_t> pid =
        Spawn("postgres",
              {"-D", (directory_ / "data").string(), "-k", directory_.string(), "-p",
               std::to_string(kPort), "-c", "listen_addresses=", "-c", "fsync=off", "-c",
               "full_page_writes=off", "-c", "synchronous_commit=off", "-c", "max_connections=200"},
              directory_, directory_ / "server.log");
    if (!pid.ok()) {
        return pid.status();
    }
    server_pid_ = *pid;
    return WaitUntilAccepting();
}

Status TestCluster::WaitUntilAccepting() {
    const std::string url = UrlFor("postgres");
    const Clock::time_point deadline = Clock::now() + kStartLimit;
    while (Clock::now() < deadline) {
        if (PQping(url.c_str()) == PQPING_OK) {
            return Status::Ok();
        }
        int wait_status = 0;
        if (waitpid(server_pid_, &wait_status, WNOHANG) == server_pid_) {
            server_pid_ = -1;
            return Status::Unavailable("postgres " + DescribeExit(wait_status) + ": " +
                                       LogTail(directory_ / "server.log"));
        }
        std::this_thread::sleep_for(kPollInterval);
    }
    return Status::Unavailable("postgres did not accept connections within 60 s: " +
                               LogTail(directory_ / "server.log"));
}

Status TestCluster::Stop() {
    if (server_pid_ <= 0) {
        return Status::Ok();
    }
    const pid_t pid = std::exchange(server_pid_, -1);
    kill(pid, SIGINT);
    if (WaitForExit(pid, kFastShutdownLimit)) {
        return Status::Ok();
    }
    // SIGQUIT is an immediate shutdown: the server exits without a
    // checkpoint, as after a crash.
    kill(pid, SIGQUIT);
    if (WaitForExit(pid, kImmediateShutdownLimit)) {
        return Status::Unavailable("postgres ignored a fast shutdown and was stopped with SIGQUIT");
    }
    kill(pid, SIGKILL);
    WaitForExit(pid, kImmediateShutdownLimit);
    return Status::Unavailable("postgres ignored SIGINT and SIGQUIT and was killed");
}

Status TestCluster::Restart() {
    if (Status status = Stop(); !status.ok()) {
        return status;
    }
    return StartServer();
}

std::string TestCluster::UrlFor(const std::string& database) const {
    return "postgresql:///" + database + "?host=" + directory_.string() +
           "&port=" + std::to_string(kPort) + "&user=" + kSuperuser;
}

Status TestCluster::ExecuteAdmin(const std::string& sql) {
    PGconn* conn = PQconnectdb(UrlFor("postgres").c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
        std::string message = PQerrorMessage(conn);
        PQfinish(conn);
        return Status::Unavailable("cannot connect to the test cluster: " + message);
    }
    PGresult* result = PQexec(conn, sql.c_str());
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    std::string message = ok ? "" : PQresultErrorMessage(result);
    PQclear(result);
    PQfinish(conn);
    if (!ok) {
        return Status::Internal(sql + " failed: " + message);
    }
    return Status::Ok();
}

Result<TestDatabase> TestCluster::CreateDatabase() {
    const std::string name = "test_" + std::to_string(++databases_created_);
    if (Status status = ExecuteAdmin("CREATE DATABASE " + name); !status.ok()) {
        return status;
    }
    return TestDatabase{name, UrlFor(name)};
}

Status TestCluster::DropDatabase(const std::string& name) {
    return ExecuteAdmin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

}  // namespace conveyor::postgres_test
