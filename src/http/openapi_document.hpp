#pragma once

#include <string_view>

namespace conveyor::http {

// Returns the OpenAPI 3.1 document of the API (src/http/openapi.json), as
// embedded at build time. GET /openapi.json serves it.
std::string_view OpenApiDocument();

}  // namespace conveyor::http
