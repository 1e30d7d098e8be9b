#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.hpp"

namespace conveyor::cli {

// Converts the value of one --param to JSON: "true" and "false" become
// booleans, an optional minus sign followed by decimal digits becomes an
// integer, and anything else stays a string. Returns InvalidArgument for an
// integer outside the 64-bit signed range.
Result<boost::json::value> ParseParamValue(std::string_view text);

// Builds the "params" object from --param arguments of the form KEY=VALUE,
// split at the first '='. Returns InvalidArgument, naming the argument, when
// one has no '=', has an empty key, repeats an earlier key or has a value that
// ParseParamValue rejects.
Result<boost::json::object> ParseParams(const std::vector<std::string>& arguments);

}  // namespace conveyor::cli
