#pragma once

#include <boost/url/url_view.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace conveyor::http {

enum class Route {
    kNone,
    kHealthz,
    kReadyz,
    kTasks,       // /v1/tasks
    kTask,        // /v1/tasks/{id}
    kTaskCancel,  // /v1/tasks/{id}/cancel
    kTaskRetry,   // /v1/tasks/{id}/retry
    kMetrics,     // /metrics
    kOpenApi,     // /openapi.json: keep last, kRouteCount counts from it
};

// The number of Route values, kNone included.
inline constexpr int kRouteCount = static_cast<int>(Route::kOpenApi) + 1;

struct RouteMatch {
    Route route = Route::kNone;
    std::string task_id;  // the {id} segment as sent, unchecked
};

// Parses a request target in origin form ("/v1/tasks?limit=5") or in
// absolute form with the scheme http or https ("http://host/v1/tasks"), as
// RFC 9112, section 3.2 allows. Returns nullopt for anything else: the
// asterisk and authority forms, a relative reference, a query that is not
// valid, and a path that starts with "//", which a URI parser would read as
// a host name followed by a path. The view refers to `target`.
std::optional<boost::urls::url_view> ParseRequestTarget(std::string_view target);

// Matches a request path as sent, still percent-encoded and without the
// query, against the API's routes. Matching before decoding keeps "%2F"
// from acting as a separator; the {id} segment is returned as sent.
RouteMatch MatchRoute(std::string_view path);

// Matches the path of a request target, as MatchRoute does for the path of
// ParseRequestTarget's result. When ParseRequestTarget rejects the target
// but accepts it without its query, the path in front of the query is
// matched, so that a broken query on an operations route is still known to
// be on that route.
RouteMatch MatchTargetRoute(std::string_view target);

// Returns the methods a route accepts, as an Allow header value. HEAD is
// accepted wherever GET is.
std::string_view AllowedMethods(Route route);

// Returns true when `method` is one of the route's methods.
bool IsMethodAllowed(Route route, std::string_view method);

// Returns true for the operations routes (/healthz, /readyz, /metrics and
// /openapi.json), which need no API key. Every other target, matched or
// not, is authenticated first.
bool IsOpenRoute(Route route);

// Returns a low-cardinality name for logs and metrics, e.g. "/v1/tasks/{id}".
std::string_view RouteName(Route route);

}  // namespace conveyor::http
