#include "http/router.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>

namespace conveyor::http {

std::optional<boost::urls::url_view> ParseRequestTarget(std::string_view target) {
    if (target.starts_with("//")) {
        return std::nullopt;
    }
    if (target.starts_with('/')) {
        const auto parsed = boost::urls::parse_origin_form(target);
        return parsed ? std::optional(*parsed) : std::nullopt;
    }
    const auto parsed = boost::urls::parse_absolute_uri(target);
    if (!parsed || !parsed->has_authority()) {
        return std::nullopt;
    }
    const std::string_view path = parsed->encoded_path();
    if (path.starts_with("//")) {
        return std::nullopt;
    }
    const std::string_view scheme = parsed->scheme();
    if (!boost::beast::iequals(scheme, "http") && !boost::beast::iequals(scheme, "https")) {
        return std::nullopt;
    }
    return *parsed;
}

bool IsOpenRoute(Route route) {
    return route == Route::kHealthz || route == Route::kReadyz || route == Route::kMetrics ||
           route == Route::kOpenApi;
}

RouteMatch MatchRoute(std::string_view path) {
    if (path == "/healthz") {
        return {Route::kHealthz, {}};
    }
    if (path == "/readyz") {
        return {Route::kReadyz, {}};
    }
    if (path == "/metrics") {
        return {Route::kMetrics, {}};
    }
    if (path == "/openapi.json") {
        return {Route::kOpenApi, {}};
    }
    constexpr std::string_view kTasks = "/v1/tasks";
    if (path == kTasks) {
        return {Route::kTasks, {}};
    }
    if (!path.starts_with(kTasks) || path.size() <= kTasks.size() + 1 ||
        path[kTasks.size()] != '/') {
        return {};
    }
    const std::string_view rest = path.substr(kTasks.size() + 1);
    const std::size_t slash = rest.find('/');
    const std::string_view id = rest.substr(0, slash);
    if (id.empty()) {
        return {};
    }
    if (slash == std::string_view::npos) {
        return {Route::kTask, std::string(id)};
    }
    const std::string_view action = rest.substr(slash + 1);
    if (action == "cancel") {
        return {Route::kTaskCancel, std::string(id)};
    }
    if (action == "retry") {
        return {Route::kTaskRetry, std::string(id)};
    }
    return {};
}

RouteMatch MatchTargetRoute(std::string_view target) {
    std::optional<boost::urls::url_view> parsed = ParseRequestTarget(target);
    if (!parsed) {
        parsed = ParseRequestTarget(target.substr(0, target.find('?')));
    }
    return parsed ? MatchRoute(parsed->encoded_path()) : RouteMatch{};
}

std::string_view AllowedMethods(Route route) {
    switch (route) {
        case Route::kTasks:
            return "GET, HEAD, POST";
        case Route::kTaskCancel:
        case Route::kTaskRetry:
            return "POST";
        case Route::kHealthz:
        case Route::kReadyz:
        case Route::kTask:
        case Route::kMetrics:
        case Route::kOpenApi:
            return "GET, HEAD";
        case Route::kNone:
            return "";
    }
    return "";
}

bool IsMethodAllowed(Route route, std::string_view method) {
    switch (route) {
        case Route::kTasks:
            return method == "GET" || method == "HEAD" || method == "POST";
        case Route::kTaskCancel:
        case Route::kTaskRetry:
            return method == "POST";
        case Route::kHealthz:
        case Route::kReadyz:
        case Route::kTask:
        case Route::kMetrics:
        case Route::kOpenApi:
            return method == "GET" || method == "HEAD";
        case Route::kNone:
            return false;
    }
    return false;
}

std::string_view RouteName(Route route) {
    switch (route) {
        case Route::kHealthz:
            return "/healthz";
        case Route::kReadyz:
            return "/readyz";
        case Route::kTasks:
            return "/v1/tasks";
        case Route::kTask:
            return "/v1/tasks/{id}";
        case Route::kTaskCancel:
            return "/v1/tasks/{id}/cancel";
        case Route::kTaskRetry:
            return "/v1/tasks/{id}/retry";
        case Route::kMetrics:
            return "/metrics";
        case Route::kOpenApi:
            return "/openapi.json";
        case Route::kNone:
            return "unmatched";
    }
    return "unmatched";
}

}  // namespace conveyor::http
