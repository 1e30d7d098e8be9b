#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "storage/task_store.hpp"

namespace conveyor::http {

// Returns a digest of everything in `query` that a cursor is bound to: the
// filters and the order, but not the limit or the position.
std::string QueryFingerprint(const ListQuery& query);

// Encodes `position` for the query with `fingerprint`, signed with `key`
// (HMAC-SHA-256), as URL-safe text.
std::string EncodeCursor(const ListPosition& position, std::string_view fingerprint,
                         std::string_view key);

// Decodes a cursor. Returns nullopt when it is malformed, its signature does
// not match `key`, or it was issued for another query.
std::optional<ListPosition> DecodeCursor(std::string_view cursor, std::string_view fingerprint,
                                         std::string_view key);

}  // namespace conveyor::http
