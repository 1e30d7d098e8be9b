#include "core/api_keys.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <span>
#include <sstream>
#include <vector>

#include "core/crypto.hpp"
#include "core/ids.hpp"

namespace conveyor {
namespace {

// A generated key is 64 characters long; a longer Bearer token is rejected
// before it is hashed.
constexpr std::size_t kMaxApiKeyLength = 256;
constexpr std::size_t kHashBytes = 32;

bool IsLowerHex(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Decodes lower-case hex of exactly `byte_count` bytes.
std::optional<std::string> DecodeHex(std::string_view text, std::size_t byte_count) {
    if (text.size() != byte_count * 2 || !IsLowerHex(text)) {
        return std::nullopt;
    }
    auto digit = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    std::string out(byte_count, '\0');
    for (std::size_t i = 0; i < byte_count; ++i) {
        out[i] = static_cast<char>(digit(text[2 * i]) * 16 + digit(text[2 * i + 1]));
    }
    return out;
}

std::vector<std::string_view> SplitFields(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t position = 0;
    while (position < line.size()) {
        const std::size_t start = line.find_first_not_of(" \t", position);
        if (start == std::string_view::npos) {
            break;
        }
        const std::size_t end = std::min(line.find_first_of(" \t", start), line.size());
        fields.push_back(line.substr(start, end - start));
        position = end;
    }
    return fields;
}

std::string_view TrimLine(std::string_view line) {
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    const std::size_t start = line.find_first_not_of(" \t");
    return start == std::string_view::npos ? std::string_view() : line.substr(start);
}

Status LineError(std::string_view source, std::size_t line_number, std::string_view problem) {
    return Status::InvalidArgument("API keys file " + std::string(source) + " line " +
                                   std::to_string(line_number) + ": " + std::string(problem));
}

std::string RandomBytes(std::size_t count) {
    std::string bytes(count, '\0');
    FillSecureRandom(std::as_writable_bytes(std::span<char>(bytes.data(), bytes.size())));
    return bytes;
}

}  // namespace

bool IsValidTenantName(std::string_view name) {
    return !name.empty() && name.size() <= kMaxTenantNameLength &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
           });
}

std::optional<std::string_view> ApiKeyId(std::string_view key) {
    constexpr std::size_t kSecretStart = kApiKeyPrefix.size() + kApiKeyIdHexDigits + 1;
    if (key.size() <= kSecretStart || key.size() > kMaxApiKeyLength ||
        !key.starts_with(kApiKeyPrefix) || key[kSecretStart - 1] != '_') {
        return std::nullopt;
    }
    const std::string_view key_id = key.substr(kApiKeyPrefix.size(), kApiKeyIdHexDigits);
    if (!IsLowerHex(key_id)) {
        return std::nullopt;
    }
    return key_id;
}

std::string HashApiKey(std::string_view salt, std::string_view key) {
    std::string salted;
    salted.reserve(salt.size() + key.size());
    salted.append(salt);
    salted.append(key);
    return Sha256(salted);
}

GeneratedApiKey GenerateApiKey(std::string_view tenant) {
    GeneratedApiKey generated;
    generated.key_id = RandomHex(kApiKeyIdHexDigits / 2);
    generated.key = std::string(kApiKeyPrefix) + generated.key_id + "_" +
                    Base64UrlEncode(RandomBytes(kApiKeySecretBytes));
    const std::string salt = RandomBytes(kApiKeySaltBytes);
    generated.line = generated.key_id + " " + std::string(tenant) + " " + HexEncode(salt) + " " +
                     HexEncode(HashApiKey(salt, generated.key));
    return generated;
}

Result<ApiKeySet> ApiKeySet::Parse(std::string_view content, std::string_view source) {
    ApiKeySet set;
    std::size_t line_number = 0;
    std::size_t position = 0;
    while (position < content.size()) {
        const std::size_t end = std::min(content.find('\n', position), content.size());
        const std::string_view line = TrimLine(content.substr(position, end - position));
        position = end + 1;
        ++line_number;
        if (line.empty() || line.front() == '#') {
            continue;
        }

        const std::vector<std::string_view> fields = SplitFields(line);
        if (fields.size() != 4) {
            return LineError(source, line_number,
                             "expected 4 fields, KEY_ID TENANT SALT HASH, but found " +
                                 std::to_string(fields.size()));
        }
        const std::string_view key_id = fields[0];
        if (key_id.size() != kApiKeyIdHexDigits || !IsLowerHex(key_id)) {
            return LineError(source, line_number, "the key id must be 16 lower-case hex digits");
        }
        if (!IsValidTenantName(fields[1])) {
            return LineError(source, line_number,
                             "the tenant must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' "
                             "and '-'");
        }
        std::optional<std::string> salt = DecodeHex(fields[2], kApiKeySaltBytes);
        if (!salt) {
            return LineError(source, line_number, "the salt must be 32 lower-case hex digits");
        }
        std::optional<std::string> hash = DecodeHex(fields[3], kHashBytes);
        if (!hash) {
            return LineError(source, line_number,
                             "the hash must be 64 lower-case hex digits (SHA-256)");
        }
        const auto [_, inserted] = set.entries_.emplace(
            std::string(key_id), Entry{std::string(fields[1]), std::move(*salt), std::move(*hash)});
        if (!inserted) {
            return LineError(source, line_number,
                             "the key id " + std::string(key_id) + " appears on an earlier line");
        }
    }
    return set;
}

Result<ApiKeySet> ApiKeySet::Load(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        return Status::InvalidArgument("cannot open API keys file " + path + ": " +
                                       std::strerror(errno));
    }
    std::ostringstream content;
    content << file.rdbuf();
    if (file.bad()) {
        return Status::InvalidArgument("cannot read API keys file " + path);
    }
    return Parse(content.str(), path);
}

std::optional<std::string_view> ApiKeySet::Authenticate(std::string_view key) const {
    const std::optional<std::string_view> key_id = ApiKeyId(key);
    if (!key_id) {
        return std::nullopt;
    }
    const auto found = entries_.find(std::string(*key_id));
    if (found == entries_.end()) {
        return std::nullopt;
    }
    const Entry& entry = found->second;
    if (!ConstantTimeEqual(HashApiKey(entry.salt, key), entry.hash)) {
        return std::nullopt;
    }
    return std::string_view(entry.tenant);
}

std::size_t ApiKeySet::TenantCount() const {
    std::set<std::string_view> tenants;
    for (const auto& [key_id, entry] : entries_) {
        tenants.insert(entry.tenant);
    }
    return tenants.size();
}

}  // namespace conveyor
