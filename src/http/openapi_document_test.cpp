#include "http/openapi_document.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "http/router.hpp"

namespace conveyor::http {
namespace {

constexpr std::string_view kTaskId = "0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b";

boost::json::object ParseDocument() {
    boost::json::error_code error;
    boost::json::value document = boost::json::parse(OpenApiDocument(), error);
    EXPECT_FALSE(error) << "the embedded document is not JSON: " << error.message();
    return document.is_object() ? document.get_object() : boost::json::object{};
}

// Replaces the {task_id} template of a documented path with a real id.
std::string FillTemplate(std::string_view path) {
    std::string filled(path);
    const std::size_t start = filled.find("{task_id}");
    if (start != std::string::npos) {
        filled.replace(start, 9, kTaskId);
    }
    return filled;
}

TEST(OpenApiDocument, IsOpenApi31) {
    const boost::json::object document = ParseDocument();
    const auto* version = document.if_contains("openapi");
    ASSERT_NE(version, nullptr);
    ASSERT_TRUE(version->is_string());
    EXPECT_TRUE(version->get_string().starts_with("3.1."));
}

TEST(OpenApiDocument, EveryPathHasRoute) {
    const boost::json::object document = ParseDocument();
    const auto* paths = document.if_contains("paths");
    ASSERT_NE(paths, nullptr);
    ASSERT_TRUE(paths->is_object());
    for (const auto& [path, item] : paths->get_object()) {
        const Route route = MatchRoute(FillTemplate(path)).route;
        EXPECT_NE(route, Route::kNone) << path;
        for (const auto& [method, operation] : item.get_object()) {
            if (method == "parameters") {
                continue;
            }
            std::string upper(method);
            for (char& c : upper) {
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            }
            EXPECT_TRUE(IsMethodAllowed(route, upper)) << upper << ' ' << path;
        }
    }
}

}  // namespace
}  // namespace conveyor::http
