#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.hpp"

// API keys and the file that stores them. A key reads
// "cvk_<key id>_<secret>": the key id is 16 lower-case hex digits and the
// secret 43 base64url characters (32 random bytes). The file has one entry
// per line, "KEY_ID TENANT SALT HASH", where SALT is 16 random bytes and
// HASH is SHA-256(salt || key), both in lower-case hex. Blank lines and
// lines starting with '#' are ignored. docs/configuration.md explains why a
// salted SHA-256 suffices for keys of 256 random bits.
namespace conveyor {

inline constexpr std::string_view kApiKeyPrefix = "cvk_";
inline constexpr std::size_t kApiKeyIdHexDigits = 16;
inline constexpr std::size_t kApiKeySecretBytes = 32;
inline constexpr std::size_t kApiKeySaltBytes = 16;
inline constexpr std::size_t kMaxTenantNameLength = 64;

// Returns whether `name` is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_'
// and '-'.
bool IsValidTenantName(std::string_view name);

// Returns the key id of a key in the "cvk_<key id>_<secret>" form, or
// nullopt for anything else.
std::optional<std::string_view> ApiKeyId(std::string_view key);

// Returns SHA-256(salt || key): the stored hash of `key`.
std::string HashApiKey(std::string_view salt, std::string_view key);

// A new key and its line in the key file.
struct GeneratedApiKey {
    std::string key;     // shown once to the operator, never stored
    std::string key_id;  // also the first field of `line`
    std::string line;    // "KEY_ID TENANT SALT HASH", without a newline
};

// Generates a key for `tenant` from the secure random source. The tenant
// must satisfy IsValidTenantName.
GeneratedApiKey GenerateApiKey(std::string_view tenant);

// The entries of one key file. Immutable after parsing, so concurrent
// Authenticate calls need no lock.
class ApiKeySet {
  public:
    // Parses the content of a key file. `source` names the file in error
    // messages. Returns InvalidArgument naming the first bad line (its
    // number, and what is wrong) or a key id that appears twice. An empty
    // file gives an empty set.
    static Result<ApiKeySet> Parse(std::string_view content, std::string_view source);

    // Reads and parses the file at `path`. InvalidArgument when it cannot
    // be read or does not parse.
    static Result<ApiKeySet> Load(const std::string& path);

    // Returns the tenant that `key` belongs to, or nullopt when the key is
    // malformed or matches no entry. The hash comparison takes the same time
    // wherever the first differing byte is.
    std::optional<std::string_view> Authenticate(std::string_view key) const;

    bool ContainsKeyId(std::string_view key_id) const {
        return entries_.contains(std::string(key_id));
    }
    std::size_t KeyCount() const { return entries_.size(); }
    std::size_t TenantCount() const;

  private:
    struct Entry {
        std::string tenant;
        std::string salt;  // raw bytes
        std::string hash;  // raw bytes
    };

    std::unordered_map<std::string, Entry> entries_;  // by key id
};

}  // namespace conveyor
