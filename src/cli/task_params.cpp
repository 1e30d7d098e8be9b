#include "cli/task_params.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace conveyor::cli {
namespace {

bool IsDigit(char c) {
    return c >= '0' && c <= '9';
}

bool LooksLikeInteger(std::string_view text) {
    std::string_view digits = text;
    if (!digits.empty() && digits.front() == '-') {
        digits.remove_prefix(1);
    }
    return !digits.empty() && std::all_of(digits.begin(), digits.end(), IsDigit);
}

}  // namespace

Result<boost::json::value> ParseParamValue(std::string_view text) {
    if (text == "true") {
        return boost::json::value(true);
    }
    if (text == "false") {
        return boost::json::value(false);
    }
    if (!LooksLikeInteger(text)) {
        return boost::json::value(boost::json::string(text));
    }

    std::int64_t number = 0;
    const char* end = text.data() + text.size();
    auto [last, error] = std::from_chars(text.data(), end, number);
    if (error != std::errc() || last != end) {
        return Status::InvalidArgument("integer out of range: " + std::string(text));
    }
    return boost::json::value(number);
}

Result<boost::json::object> ParseParams(const std::vector<std::string>& arguments) {
    boost::json::object params;
    for (const std::string& argument : arguments) {
        std::size_t equals = argument.find('=');
        if (equals == std::string::npos) {
            return Status::InvalidArgument("invalid --param '" + argument +
                                           "': expected KEY=VALUE");
        }
        std::string_view key = std::string_view(argument).substr(0, equals);
        if (key.empty()) {
            return Status::InvalidArgument("invalid --param '" + argument + "': the key is empty");
        }
        if (params.contains(key)) {
            return Status::InvalidArgument("invalid --param '" + argument + "': the key '" +
                                           std::string(key) + "' is given twice");
        }

        auto value = ParseParamValue(std::string_view(argument).substr(equals + 1));
        if (!value.ok()) {
            return Status::InvalidArgument("invalid --param '" + argument +
                                           "': " + value.status().message());
        }
        params.emplace(key, std::move(*value));
    }
    return params;
}

}  // namespace conveyor::cli
