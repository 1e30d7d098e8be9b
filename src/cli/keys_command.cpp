#include "cli/keys_command.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "cli/exit_status.hpp"
#include "core/api_keys.hpp"

namespace conveyor::cli {
namespace {

constexpr char kCommandName[] = "conveyor keys add";
// The keys file cannot be read, parsed or written.
constexpr int kExitFileError = 1;
constexpr char kFileHeader[] =
    "# Conveyor API keys, one per line: KEY_ID TENANT SALT HASH, where HASH is\n"
    "# SHA-256(SALT || KEY) in hex. Add keys with `conveyor keys add`; delete a\n"
    "# line to revoke its key. The server reads this file when it starts.\n";

int Fail(const std::string& message) {
    std::cerr << kCommandName << ": " << message << "\n";
    return kExitFileError;
}

// Reads the whole file, or returns nullopt with errno set when it cannot be
// opened.
std::optional<std::string> ReadFile(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        return std::nullopt;
    }
    std::ostringstream content;
    content << file.rdbuf();
    return content.str();
}

// Appends `text` with one write() call on a descriptor opened with
// O_APPEND, so two commands that add keys at once do not interleave
// their lines, then flushes it to disk.
Status AppendDurably(const std::string& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return Status::Unavailable("cannot open " + path + " for writing: " + std::strerror(errno));
    }
    const ssize_t written = ::write(fd, text.data(), text.size());
    const int write_errno = errno;
    const int synced = ::fsync(fd);
    const int sync_errno = errno;
    ::close(fd);
    if (written != static_cast<ssize_t>(text.size())) {
        return Status::Unavailable("cannot write " + path + ": " +
                                   (written < 0 ? std::strerror(write_errno) : "short write"));
    }
    if (synced != 0) {
        return Status::Unavailable("cannot flush " + path +
                                   " to disk: " + std::strerror(sync_errno));
    }
    return Status::Ok();
}

int AddKey(const std::string& tenant, const std::string& path) {
    std::error_code exists_error;
    const bool exists = std::filesystem::exists(path, exists_error);
    std::string text;
    ApiKeySet existing;
    if (exists) {
        std::optional<std::string> content = ReadFile(path);
        if (!content) {
            return Fail("cannot read " + path + ": " + std::strerror(errno));
        }
        Result<ApiKeySet> parsed = ApiKeySet::Parse(*content, path);
        if (!parsed.ok()) {
            return Fail(parsed.status().message() + "; fix the file before adding a key");
        }
        existing = std::move(*parsed);
        if (!content->empty() && content->back() != '\n') {
            text.push_back('\n');
        }
    } else {
        text = kFileHeader;
    }

    GeneratedApiKey generated = GenerateApiKey(tenant);
    // A repeated 64-bit id is all but impossible, but it would make the
    // file unreadable, so it is checked.
    for (int attempt = 0; attempt < 3 && existing.ContainsKeyId(generated.key_id); ++attempt) {
        generated = GenerateApiKey(tenant);
    }
    if (existing.ContainsKeyId(generated.key_id)) {
        return Fail("cannot generate a key id that " + path + " does not hold yet");
    }
    text += generated.line + "\n";
    if (Status appended = AppendDurably(path, text); !appended.ok()) {
        return Fail(appended.message());
    }

    std::cout << generated.key << std::endl;
    std::cerr << kCommandName << ": added key " << generated.key_id << " for tenant " << tenant
              << " to " << path
              << ". The key above is shown only this once; a running server reads the file at "
                 "start, so restart it to accept the key.\n";
    return kExitOk;
}

}  // namespace

int RunKeysCommand(int argc, char** argv) {
    CLI::App app("Manage the API keys file", "conveyor keys");
    app.require_subcommand(1);
    CLI::App* add = app.add_subcommand(
        "add", "Add an API key for a tenant to the keys file and print the key once");
    std::string tenant;
    std::string path;
    add->add_option("--tenant", tenant,
                    "Tenant that the key belongs to: 1 to 64 characters of A-Z, a-z, 0-9, '.', "
                    "'_' and '-'")
        ->required()
        ->check([](const std::string& name) {
            return IsValidTenantName(name)
                       ? std::string()
                       : std::string(
                             "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' "
                             "and '-'");
        });
    add->add_option("--api-keys-file", path,
                    "The keys file that the server reads; created with mode 0600 when missing")
        ->envname("CONVEYOR_API_KEYS_FILE")
        ->required();

    // CLI11 takes argv[0] as the program name, so "keys" takes its place.
    try {
        app.parse(argc - 1, argv + 1);
    } catch (const CLI::ParseError& error) {
        return app.exit(error) == 0 ? kExitOk : kExitUsageError;
    }
    return AddKey(tenant, path);
}

}  // namespace conveyor::cli
