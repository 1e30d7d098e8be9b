#include "core/time.hpp"

#include <chrono>
#include <cstdio>

namespace conveyor {
namespace {

bool ReadDigits(std::string_view text, std::size_t pos, std::size_t count, int& out) {
    if (pos + count > text.size()) {
        return false;
    }
    int value = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        value = value * 10 + (text[i] - '0');
    }
    out = value;
    return true;
}

}  // namespace

UnixMillis NowMillis() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string FormatTimestamp(UnixMillis millis) {
    using namespace std::chrono;
    const sys_time<milliseconds> point{milliseconds{millis}};
    const auto day = floor<days>(point);
    const year_month_day date{day};
    const hh_mm_ss time{point - day};
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                  static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                  static_cast<unsigned>(date.day()), static_cast<int>(time.hours().count()),
                  static_cast<int>(time.minutes().count()),
                  static_cast<int>(time.seconds().count()),
                  static_cast<int>(time.subseconds().count()));
    return buffer;
}

std::optional<UnixMillis> ParseTimestamp(std::string_view text) {
    using namespace std::chrono;
    // Fixed layout: YYYY-MM-DDTHH:MM:SS, then an optional fraction, then the zone.
    int year = 0, month = 0, day_of_month = 0, hour = 0, minute = 0, second = 0;
    if (text.size() < 20 || !ReadDigits(text, 0, 4, year) || text[4] != '-' ||
        !ReadDigits(text, 5, 2, month) || text[7] != '-' ||
        !ReadDigits(text, 8, 2, day_of_month) || (text[10] != 'T' && text[10] != 't') ||
        !ReadDigits(text, 11, 2, hour) || text[13] != ':' || !ReadDigits(text, 14, 2, minute) ||
        text[16] != ':' || !ReadDigits(text, 17, 2, second)) {
        return std::nullopt;
    }
    // A leap second (60) is accepted by RFC 3339 but has no place on this clock.
    if (hour > 23 || minute > 59 || second > 59) {
        return std::nullopt;
    }
    const year_month_day date{std::chrono::year{year}, std::chrono::month{unsigned(month)},
                              std::chrono::day{unsigned(day_of_month)}};
    if (!date.ok()) {
        return std::nullopt;
    }

    std::size_t pos = 19;
    int fraction_millis = 0;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        const std::size_t start = pos;
        int scale = 100;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            fraction_millis += (text[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start) {
            return std::nullopt;
        }
    }

    int offset_minutes = 0;
    if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
        ++pos;
    } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
        int offset_hours = 0, offset_mins = 0;
        if (!ReadDigits(text, pos + 1, 2, offset_hours) || pos + 3 >= text.size() ||
            text[pos + 3] != ':' || !ReadDigits(text, pos + 4, 2, offset_mins) ||
            offset_hours > 23 || offset_mins > 59) {
            return std::nullopt;
        }
        offset_minutes = (offset_hours * 60 + offset_mins) * (text[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != text.size()) {
        return std::nullopt;
    }

    const sys_days days_since_epoch{date};
    const auto total = days_since_epoch.time_since_epoch() + hours{hour} + minutes{minute} +
                       seconds{second} + milliseconds{fraction_millis} - minutes{offset_minutes};
    return duration_cast<milliseconds>(total).count();
}

}  // namespace conveyor
