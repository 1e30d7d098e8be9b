#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "core/time.hpp"

namespace conveyor::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
std::atomic<bool> g_json{false};

std::string_view LevelName(Level level) {
    switch (level) {
        case Level::kDebug:
            return "debug";
        case Level::kInfo:
            return "info";
        case Level::kWarn:
            return "warn";
        case Level::kError:
            return "error";
    }
    return "info";
}

void AppendJsonString(std::string& out, std::string_view text) {
    out.push_back('"');
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (byte < 0x20) {
                    char escape[8];
                    std::snprintf(escape, sizeof escape, "\\u%04x", byte);
                    out += escape;
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

// Text values with spaces, quotes or '=' are quoted so that a line still
// splits into fields unambiguously.
void AppendTextValue(std::string& out, std::string_view value) {
    const bool plain =
        !value.empty() && value.find_first_of(" \"=\t\n\r") == std::string_view::npos;
    if (plain) {
        out += value;
    } else {
        AppendJsonString(out, value);
    }
}

spdlog::logger& Logger() {
    static auto logger = [] {
        auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        auto created = std::make_shared<spdlog::logger>("conveyor", std::move(sink));
        created->set_pattern("%v");
        created->set_level(spdlog::level::trace);
        created->flush_on(spdlog::level::trace);
        return created;
    }();
    return *logger;
}

}  // namespace

bool Init(std::string_view format, std::string_view level) {
    if (format.empty()) {
        g_json = isatty(STDERR_FILENO) == 0;
    } else if (format == "json") {
        g_json = true;
    } else if (format == "text") {
        g_json = false;
    } else {
        return false;
    }
    for (const Level candidate : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
        if (LevelName(candidate) == level) {
            g_min_level = static_cast<int>(candidate);
            Logger();
            return true;
        }
    }
    return false;
}

namespace {

std::string FieldNumber(const Field& field) {
    return field.kind == Field::Kind::kInteger ? std::to_string(field.integer)
                                               : std::to_string(field.real);
}

}  // namespace

bool Enabled(Level level) {
    return static_cast<int>(level) >= g_min_level.load();
}

void Write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields) {
    if (!Enabled(level)) {
        return;
    }
    std::string line;
    line.reserve(128);
    const std::string time = FormatTimestamp(NowMillis());
    if (g_json) {
        line += "{\"time\":\"";
        line += time;
        line += "\",\"level\":\"";
        line += LevelName(level);
        line += "\",\"component\":";
        AppendJsonString(line, component);
        line += ",\"msg\":";
        AppendJsonString(line, message);
        for (const Field& field : fields) {
            if (field.kind == Field::Kind::kAbsent) {
                continue;
            }
            line.push_back(',');
            AppendJsonString(line, field.key);
            line.push_back(':');
            if (field.kind == Field::Kind::kText) {
                AppendJsonString(line, field.text);
            } else {
                line += FieldNumber(field);
            }
        }
        line.push_back('}');
    } else {
        line += time;
        line.push_back(' ');
        line += LevelName(level);
        line.push_back(' ');
        line += component;
        line.push_back(' ');
        line += message;
        for (const Field& field : fields) {
            if (field.kind == Field::Kind::kAbsent) {
                continue;
            }
            line.push_back(' ');
            line += field.key;
            line.push_back('=');
            if (field.kind == Field::Kind::kText) {
                AppendTextValue(line, field.text);
            } else {
                line += FieldNumber(field);
            }
        }
    }
    Logger().info(line);
}

}  // namespace conveyor::log
