#include "http/cursor.hpp"

#include <charconv>

#include "core/crypto.hpp"
#include "core/ids.hpp"

namespace conveyor::http {
namespace {

// Layout of the signed payload: version, fingerprint, created_at, task_id,
// separated by '|'. The MAC (32 bytes) follows the payload.
constexpr std::string_view kVersion = "c1";
constexpr std::size_t kMacSize = 32;

}  // namespace

std::string QueryFingerprint(const ListQuery& query) {
    // Each free-text value is preceded by its length, so no value can
    // imitate the separators of another.
    auto append_field = [](std::string& out, std::string_view name, std::string_view value) {
        out += name;
        out += std::to_string(value.size());
        out += ':';
        out += value;
    };
    std::string canonical;
    append_field(canonical, "order", query.descending ? "desc" : "asc");
    std::string statuses;
    for (const TaskStatus status :
         {TaskStatus::kPending, TaskStatus::kProcessing, TaskStatus::kCompleted,
          TaskStatus::kFailed, TaskStatus::kCancelled}) {
        for (const TaskStatus wanted : query.statuses) {
            if (wanted == status) {
                statuses += ToString(status);
                statuses += ',';
                break;
            }
        }
    }
    append_field(canonical, "status", statuses);
    append_field(canonical, "type", query.type ? "=" + *query.type : "");
    append_field(canonical, "after",
                 query.created_after ? std::to_string(*query.created_after) : "");
    append_field(canonical, "before",
                 query.created_before ? std::to_string(*query.created_before) : "");
    append_field(canonical, "tenant", query.tenant);
    return Sha256(canonical).substr(0, 12);
}

std::string EncodeCursor(const ListPosition& position, std::string_view fingerprint,
                         std::string_view key) {
    std::string payload(kVersion);
    payload += '|';
    payload += HexEncode(fingerprint);
    payload += '|';
    payload += std::to_string(position.created_at);
    payload += '|';
    payload += position.task_id;
    const std::string mac = HmacSha256(key, payload);
    return Base64UrlEncode(payload + mac);
}

std::optional<ListPosition> DecodeCursor(std::string_view cursor, std::string_view fingerprint,
                                         std::string_view key) {
    if (cursor.size() > 512) {
        return std::nullopt;
    }
    const auto raw = Base64UrlDecode(cursor);
    if (!raw || raw->size() <= kMacSize) {
        return std::nullopt;
    }
    const std::string_view bytes(*raw);
    const std::string_view payload = bytes.substr(0, bytes.size() - kMacSize);
    const std::string_view mac = bytes.substr(bytes.size() - kMacSize);
    if (!ConstantTimeEqual(mac, HmacSha256(key, payload))) {
        return std::nullopt;
    }

    // The signature is ours, so the layout is trusted from here on; only
    // the binding to this query remains to check.
    const std::string expected_prefix = std::string(kVersion) + "|" + HexEncode(fingerprint) + "|";
    if (!payload.starts_with(expected_prefix)) {
        return std::nullopt;
    }
    const std::string_view rest = payload.substr(expected_prefix.size());
    const std::size_t separator = rest.find('|');
    if (separator == std::string_view::npos) {
        return std::nullopt;
    }
    ListPosition position;
    const std::string_view millis = rest.substr(0, separator);
    const auto parsed =
        std::from_chars(millis.data(), millis.data() + millis.size(), position.created_at);
    if (parsed.ec != std::errc() || parsed.ptr != millis.data() + millis.size()) {
        return std::nullopt;
    }
    position.task_id = std::string(rest.substr(separator + 1));
    if (!IsUuid(position.task_id)) {
        return std::nullopt;
    }
    return position;
}

}  // namespace conveyor::http
