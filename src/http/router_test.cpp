#include "http/router.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>

namespace conveyor::http {
namespace {

constexpr std::string_view kId = "0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b";

// Splits an Allow header value such as "GET, POST" into its methods.
std::set<std::string> SplitAllow(std::string_view allow) {
    std::set<std::string> methods;
    while (!allow.empty()) {
        const std::size_t comma = allow.find(", ");
        methods.emplace(allow.substr(0, comma));
        if (comma == std::string_view::npos) {
            break;
        }
        allow.remove_prefix(comma + 2);
    }
    return methods;
}

TEST(MatchRoute, Healthz) {
    const RouteMatch match = MatchRoute("/healthz");
    EXPECT_EQ(match.route, Route::kHealthz);
    EXPECT_EQ(match.task_id, "");
}

TEST(MatchRoute, Readyz) {
    EXPECT_EQ(MatchRoute("/readyz").route, Route::kReadyz);
}

TEST(MatchRoute, Metrics) {
    EXPECT_EQ(MatchRoute("/metrics").route, Route::kMetrics);
    EXPECT_EQ(MatchRoute("/metrics/").route, Route::kNone);
}

TEST(MatchRoute, OpenApiDocument) {
    EXPECT_EQ(MatchRoute("/openapi.json").route, Route::kOpenApi);
    EXPECT_EQ(MatchRoute("/openapi.json/").route, Route::kNone);
    EXPECT_EQ(MatchRoute("/v1/openapi.json").route, Route::kNone);
}

TEST(MatchRoute, TaskCollection) {
    const RouteMatch match = MatchRoute("/v1/tasks");
    EXPECT_EQ(match.route, Route::kTasks);
    EXPECT_EQ(match.task_id, "");
}

TEST(MatchRoute, TaskCapturesId) {
    const RouteMatch match = MatchRoute("/v1/tasks/0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b");
    EXPECT_EQ(match.route, Route::kTask);
    EXPECT_EQ(match.task_id, kId);
}

TEST(MatchRoute, CancelCapturesId) {
    const RouteMatch match = MatchRoute("/v1/tasks/0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b/cancel");
    EXPECT_EQ(match.route, Route::kTaskCancel);
    EXPECT_EQ(match.task_id, kId);
}

TEST(MatchRoute, RetryCapturesId) {
    const RouteMatch match = MatchRoute("/v1/tasks/0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b/retry");
    EXPECT_EQ(match.route, Route::kTaskRetry);
    EXPECT_EQ(match.task_id, kId);
}

TEST(MatchRoute, LeavesIdUnchecked) {
    // The handler checks the id, so that it can return invalid_task_id
    // rather than not_found.
    const RouteMatch match = MatchRoute("/v1/tasks/not-a-uuid");
    EXPECT_EQ(match.route, Route::kTask);
    EXPECT_EQ(match.task_id, "not-a-uuid");

    const RouteMatch cancel = MatchRoute("/v1/tasks/x/cancel");
    EXPECT_EQ(cancel.route, Route::kTaskCancel);
    EXPECT_EQ(cancel.task_id, "x");
}

TEST(MatchRoute, RejectsUnknownPaths) {
    for (const std::string_view path :
         {"", "/", "/v1", "/v1/", "/v2/tasks", "/v1/task", "/v1/tasksx", "/v1/tasks-x", "/tasks",
          "/health", "/healthzz", "/readyz/x", "/V1/TASKS", "/HEALTHZ", "v1/tasks", "//v1/tasks",
          "/v1//tasks"}) {
        EXPECT_EQ(MatchRoute(path).route, Route::kNone) << '"' << path << '"';
    }
}

TEST(MatchRoute, RejectsUnknownTaskActions) {
    for (const std::string_view path :
         {"/v1/tasks/abc/delete", "/v1/tasks/abc/Cancel", "/v1/tasks/abc/cancelx",
          "/v1/tasks/abc/cancel/x", "/v1/tasks/abc/retry/x", "/v1/tasks/abc/x/cancel",
          "/v1/tasks//cancel", "/v1/tasks//retry", "/v1/tasks//"}) {
        EXPECT_EQ(MatchRoute(path).route, Route::kNone) << path;
    }
}

TEST(MatchRoute, RejectsTrailingSlashes) {
    for (const std::string_view path : {"/healthz/", "/readyz/", "/v1/tasks/", "/v1/tasks/abc/",
                                        "/v1/tasks/abc/cancel/", "/v1/tasks/abc/retry/"}) {
        EXPECT_EQ(MatchRoute(path).route, Route::kNone) << path;
    }
}

TEST(MatchRoute, RejectsQueryInPath) {
    // The caller removes the query first, so a path that still has one does
    // not match.
    EXPECT_EQ(MatchRoute("/healthz?x=1").route, Route::kNone);
}

TEST(MatchRoute, EncodedSlashIsNotSeparator) {
    const std::string id = "01a24267-33b1-7857-9d37-d38fa8fe475f";
    EXPECT_EQ(MatchRoute("/v1%2Ftasks").route, Route::kNone);
    const RouteMatch action = MatchRoute("/v1/tasks/" + id + "%2Fcancel");
    EXPECT_EQ(action.route, Route::kTask) << "the encoded slash stays inside the id";
    EXPECT_EQ(action.task_id, id + "%2Fcancel");
}

TEST(AllowedMethods, EachRoute) {
    EXPECT_EQ(AllowedMethods(Route::kHealthz), "GET, HEAD");
    EXPECT_EQ(AllowedMethods(Route::kReadyz), "GET, HEAD");
    EXPECT_EQ(AllowedMethods(Route::kTasks), "GET, HEAD, POST");
    EXPECT_EQ(AllowedMethods(Route::kTask), "GET, HEAD");
    EXPECT_EQ(AllowedMethods(Route::kTaskCancel), "POST");
    EXPECT_EQ(AllowedMethods(Route::kTaskRetry), "POST");
    EXPECT_EQ(AllowedMethods(Route::kMetrics), "GET, HEAD");
    EXPECT_EQ(AllowedMethods(Route::kOpenApi), "GET, HEAD");
    EXPECT_EQ(AllowedMethods(Route::kNone), "");
}

TEST(IsMethodAllowed, ReadOnlyRoutes) {
    for (const Route route :
         {Route::kHealthz, Route::kReadyz, Route::kTask, Route::kMetrics, Route::kOpenApi}) {
        EXPECT_TRUE(IsMethodAllowed(route, "GET")) << RouteName(route);
        EXPECT_TRUE(IsMethodAllowed(route, "HEAD")) << RouteName(route);
        EXPECT_FALSE(IsMethodAllowed(route, "POST")) << RouteName(route);
        EXPECT_FALSE(IsMethodAllowed(route, "PUT")) << RouteName(route);
        EXPECT_FALSE(IsMethodAllowed(route, "DELETE")) << RouteName(route);
    }
}

TEST(IsMethodAllowed, TaskCollection) {
    EXPECT_TRUE(IsMethodAllowed(Route::kTasks, "GET"));
    EXPECT_TRUE(IsMethodAllowed(Route::kTasks, "POST"));
    EXPECT_FALSE(IsMethodAllowed(Route::kTasks, "PUT"));
    EXPECT_FALSE(IsMethodAllowed(Route::kTasks, "DELETE"));
    EXPECT_FALSE(IsMethodAllowed(Route::kTasks, "PATCH"));
}

TEST(IsMethodAllowed, TaskActions) {
    for (const Route route : {Route::kTaskCancel, Route::kTaskRetry}) {
        EXPECT_TRUE(IsMethodAllowed(route, "POST")) << RouteName(route);
        EXPECT_FALSE(IsMethodAllowed(route, "GET")) << RouteName(route);
        EXPECT_FALSE(IsMethodAllowed(route, "PUT")) << RouteName(route);
        EXPECT_FALSE(IsMethodAllowed(route, "DELETE")) << RouteName(route);
    }
}

TEST(IsMethodAllowed, MethodsAreCaseSensitive) {
    EXPECT_FALSE(IsMethodAllowed(Route::kTasks, "get"));
    EXPECT_FALSE(IsMethodAllowed(Route::kTaskCancel, "post"));
}

TEST(IsMethodAllowed, UnmatchedRouteAllowsNothing) {
    EXPECT_FALSE(IsMethodAllowed(Route::kNone, "GET"));
    EXPECT_FALSE(IsMethodAllowed(Route::kNone, "POST"));
}

TEST(IsMethodAllowed, AgreesWithAllowedMethods) {
    // Every method listed in the Allow value is accepted, and no other.
    for (const Route route :
         {Route::kHealthz, Route::kReadyz, Route::kTasks, Route::kTask, Route::kTaskCancel,
          Route::kTaskRetry, Route::kMetrics, Route::kOpenApi, Route::kNone}) {
        const std::string_view allow = AllowedMethods(route);
        for (const std::string_view method : {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}) {
            const bool listed = SplitAllow(allow).contains(std::string(method));
            EXPECT_EQ(IsMethodAllowed(route, method), listed) << RouteName(route) << ' ' << method;
        }
    }
}

TEST(RouteName, EachRoute) {
    EXPECT_EQ(RouteName(Route::kHealthz), "/healthz");
    EXPECT_EQ(RouteName(Route::kReadyz), "/readyz");
    EXPECT_EQ(RouteName(Route::kTasks), "/v1/tasks");
    EXPECT_EQ(RouteName(Route::kTask), "/v1/tasks/{id}");
    EXPECT_EQ(RouteName(Route::kTaskCancel), "/v1/tasks/{id}/cancel");
    EXPECT_EQ(RouteName(Route::kTaskRetry), "/v1/tasks/{id}/retry");
    EXPECT_EQ(RouteName(Route::kMetrics), "/metrics");
    EXPECT_EQ(RouteName(Route::kOpenApi), "/openapi.json");
    EXPECT_EQ(RouteName(Route::kNone), "unmatched");
}

TEST(ParseRequestTarget, AcceptsOriginForm) {
    const auto target = ParseRequestTarget("/v1/tasks?limit=5");
    ASSERT_TRUE(target);
    EXPECT_EQ(std::string_view(target->encoded_path()), "/v1/tasks");
    EXPECT_EQ(std::string_view(target->encoded_query()), "limit=5");
}

TEST(ParseRequestTarget, AcceptsAbsoluteForm) {
    const auto target = ParseRequestTarget("http://127.0.0.1:8080/healthz");
    ASSERT_TRUE(target);
    EXPECT_EQ(std::string_view(target->encoded_path()), "/healthz");
}

TEST(ParseRequestTarget, AcceptsHttpsInAnyCase) {
    EXPECT_TRUE(ParseRequestTarget("HTTPS://host/metrics"));
}

TEST(ParseRequestTarget, RejectsNetworkPathReference) {
    EXPECT_FALSE(ParseRequestTarget("//x/metrics"));
    EXPECT_FALSE(ParseRequestTarget("//x/v1/tasks"));
    EXPECT_FALSE(ParseRequestTarget("//v1/tasks"));
    EXPECT_FALSE(ParseRequestTarget("//"));
}

TEST(ParseRequestTarget, RejectsDoubleSlashPathInAbsoluteForm) {
    EXPECT_FALSE(ParseRequestTarget("http://host//x/metrics"));
}

TEST(ParseRequestTarget, RejectsOtherForms) {
    EXPECT_FALSE(ParseRequestTarget("*"));
    EXPECT_FALSE(ParseRequestTarget("host:8080"));
    EXPECT_FALSE(ParseRequestTarget("v1/tasks"));
    EXPECT_FALSE(ParseRequestTarget(""));
    EXPECT_FALSE(ParseRequestTarget("ftp://host/v1/tasks"));
    EXPECT_FALSE(ParseRequestTarget("http:/v1/tasks"));
}

TEST(ParseRequestTarget, RejectsFragment) {
    EXPECT_FALSE(ParseRequestTarget("/v1/tasks#top"));
}

TEST(ParseRequestTarget, RejectsBadQueryEncoding) {
    EXPECT_FALSE(ParseRequestTarget("/v1/tasks?status=%zz"));
}

TEST(MatchTargetRoute, MatchesPathOfValidTarget) {
    EXPECT_EQ(MatchTargetRoute("/healthz?x=1").route, Route::kHealthz);
    EXPECT_EQ(MatchTargetRoute("http://host/metrics").route, Route::kMetrics);
    EXPECT_EQ(MatchTargetRoute("/v1/tasks?limit=5").route, Route::kTasks);
}

// A target whose only fault is its query keeps its route, so /healthz?%zz
// is not authenticated like an unknown path.
TEST(MatchTargetRoute, MatchesPathInFrontOfBrokenQuery) {
    EXPECT_EQ(MatchTargetRoute("/healthz?%zz").route, Route::kHealthz);
    EXPECT_EQ(MatchTargetRoute("/openapi.json?a=%").route, Route::kOpenApi);
    EXPECT_EQ(MatchTargetRoute("http://host/readyz?%zz").route, Route::kReadyz);
    EXPECT_EQ(MatchTargetRoute("/v1/tasks?status=%zz").route, Route::kTasks);
}

TEST(MatchTargetRoute, KeepsRejectedPathsUnmatched) {
    for (const std::string_view target :
         {"//x/healthz?%zz", "/healthz#top?%zz", "/healthz%zz", "*", "/nothing?%zz"}) {
        EXPECT_EQ(MatchTargetRoute(target).route, Route::kNone) << target;
    }
}

TEST(IsOpenRoute, OnlyOperationsRoutes) {
    EXPECT_TRUE(IsOpenRoute(Route::kHealthz));
    EXPECT_TRUE(IsOpenRoute(Route::kReadyz));
    EXPECT_TRUE(IsOpenRoute(Route::kMetrics));
    EXPECT_TRUE(IsOpenRoute(Route::kOpenApi));
    EXPECT_FALSE(IsOpenRoute(Route::kNone));
    EXPECT_FALSE(IsOpenRoute(Route::kTasks));
    EXPECT_FALSE(IsOpenRoute(Route::kTask));
    EXPECT_FALSE(IsOpenRoute(Route::kTaskCancel));
    EXPECT_FALSE(IsOpenRoute(Route::kTaskRetry));
}

}  // namespace
}  // namespace conveyor::http
