#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace conveyor::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// One key=value pair of a log line. A text value is viewed, not copied, so
// a line that the level filters out costs no allocation. The viewed text
// must outlive the call, as a temporary argument does.
struct Field {
    Field(std::string_view k, std::string_view v) : key(k), text(v) {}
    Field(std::string_view k, const char* v) : key(k), text(v) {}
    Field(std::string_view k, const std::string& v) : key(k), text(v) {}
    Field(std::string_view k, std::int64_t v) : key(k), kind(Kind::kInteger), integer(v) {}
    Field(std::string_view k, int v) : key(k), kind(Kind::kInteger), integer(v) {}
    Field(std::string_view k, std::size_t v)
        : key(k), kind(Kind::kInteger), integer(static_cast<std::int64_t>(v)) {}
    Field(std::string_view k, double v) : key(k), kind(Kind::kReal), real(v) {}

    // Returns a text field that is left out of the line when `v` is empty.
    static Field IfPresent(std::string_view k, std::string_view v) {
        Field field(k, v);
        if (v.empty()) {
            field.kind = Kind::kAbsent;
        }
        return field;
    }

    enum class Kind { kText, kInteger, kReal, kAbsent };

    std::string_view key;
    Kind kind = Kind::kText;
    std::string_view text;
    std::int64_t integer = 0;
    double real = 0;
};

// Sets up the process-wide logger on stderr. `format` is "text", "json" or
// empty (text on a terminal, JSON otherwise); `level` is debug, info, warn or
// error. Returns false for an unknown value. Call once, before any thread
// logs.
bool Init(std::string_view format, std::string_view level);

bool Enabled(Level level);

// Writes one line: time, level, component, message, then the fields. Text
// lines read "2026-12-04T15:11:31.123Z info http listening address=..." and
// JSON lines carry the same members. Thread-safe.
void Write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields = {});

inline void Debug(std::string_view component, std::string_view message,
                  std::initializer_list<Field> fields = {}) {
    if (Enabled(Level::kDebug)) {
        Write(Level::kDebug, component, message, fields);
    }
}
inline void Info(std::string_view component, std::string_view message,
                 std::initializer_list<Field> fields = {}) {
    if (Enabled(Level::kInfo)) {
        Write(Level::kInfo, component, message, fields);
    }
}
inline void Warn(std::string_view component, std::string_view message,
                 std::initializer_list<Field> fields = {}) {
    Write(Level::kWarn, component, message, fields);
}
inline void Error(std::string_view component, std::string_view message,
                  std::initializer_list<Field> fields = {}) {
    Write(Level::kError, component, message, fields);
}

}  // namespace conveyor::log
