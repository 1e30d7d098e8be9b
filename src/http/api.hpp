#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <optional>
#include <string>

#include "core/api_keys.hpp"
#include "core/rate_limiter.hpp"
#include "http/metrics_page.hpp"
#include "http/pending_limit.hpp"
#include "http/problem.hpp"
#include "http/router.hpp"
#include "http/submission.hpp"
#include "http/task_watcher.hpp"
#include "http/wait_limit.hpp"
#include "storage/task_commits.hpp"
#include "storage/task_store.hpp"

namespace conveyor::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// Calls from the API into the workers of the same process, so that they
// react at once instead of at their next poll. Either may be empty.
struct ApiHooks {
    std::function<void()> on_submitted;
    std::function<void(const std::string& task_id)> on_cancelled;
};

// Authentication and limits of the /v1 routes; each is off when null. The
// pointed-to objects outlive the Api.
struct ApiGuards {
    // With keys, every /v1 request needs "Authorization: Bearer KEY", and
    // the key's tenant scopes the request. Without, every request belongs to
    // one tenant.
    const ApiKeySet* api_keys = nullptr;
    // Requests per second of each tenant: 429 rate_limited past it.
    RateLimiter* rate_limiter = nullptr;
    // PENDING tasks of each tenant: a submission past it is 429 rate_limited.
    PendingLimit* pending_limit = nullptr;
    std::int64_t max_pending = 0;  // the bound of pending_limit, for messages
    // Long polls that wait at once, per tenant and in total: one more is
    // 429 rate_limited.
    WaitLimit* wait_limit = nullptr;
};

// The result of Api::CheckHeader for one request, passed on to Api::Handle.
struct Admission {
    RouteMatch match;
    std::string tenant;
    // The 400, 401, 404, 405 or 429 response that the header alone decides.
    // It is sent in place of handling the request, so the body need not be
    // read.
    std::optional<Response> rejection;
};

// The operations that a request's handler may use on the connection the
// request came on. The server passes one with each request.
class ConnectionHooks {
  public:
    // Starts watching the connection, so that a long poll stops waiting for
    // a client that is gone. The returned slot is signalled, on the
    // connection's strand, when the client closes its side or the
    // connection breaks. Call at most once per request.
    virtual boost::asio::cancellation_slot StartWatching() = 0;

    // Reserves the tenant's memory budget for a response body of `bytes`,
    // until the response has been written. Returns false when the tenant is
    // over its bound, and the response must not be sent.
    virtual bool ReserveResponse(std::string_view tenant, std::uint64_t bytes) = 0;

    // Returns true when the tenant has part of its memory budget reserved and
    // the rest may be too small for the largest task. A request whose response
    // may be that large is then rejected before the response is built.
    virtual bool TenantNearBound(std::string_view tenant) = 0;

  protected:
    ~ConnectionHooks() = default;
};

// Builds an application/problem+json response.
Response MakeProblemResponse(const Problem& problem, unsigned version, bool keep_alive);

// The HTTP API: routes a parsed request to its handler and builds the
// response. Submissions go through `create_commit`, so concurrent ones share
// a transaction; other database calls run on `db_pool`. Thread-safe; one
// instance serves every connection.
class Api {
  public:
    Api(TaskStore& store, CreateCommit& create_commit, boost::asio::thread_pool& db_pool,
        TaskWatcher& watcher, std::string cursor_key, SubmissionLimits limits, ApiHooks hooks,
        ApiGuards guards = {});

    // Checks the target, route, method, API key and request rate of a
    // request whose header has been read; its body may still be unread.
    // Takes one token of the tenant's rate, so call it once per request.
    Admission CheckHeader(const Request& request);

    // Handles one request that went through CheckHeader; a rejection in
    // `admission` is returned as it is. Either way the request is counted
    // and logged. Never throws: an unexpected exception becomes a 500
    // internal_error and an error log line. A long poll ends early, and
    // responds with the task's current state, when `connection` reports a
    // disconnect. A response body over 4 KiB that `connection` has no
    // budget for becomes a 429.
    boost::asio::awaitable<Response> Handle(const Request& request, std::string_view request_id,
                                            Admission admission,
                                            ConnectionHooks* connection = nullptr);

    // Runs CheckHeader and then Handle, for a request read whole.
    boost::asio::awaitable<Response> Handle(const Request& request, std::string_view request_id);

    // Serves only /healthz, /readyz and /metrics from now on; every other
    // path gets 404. For the listener of a worker process. Call before the
    // first request.
    void ServeProbesOnly() { probes_only_ = true; }

  private:
    struct Context;

    boost::asio::awaitable<Response> Route(Context& context);
    // Sets the request's tenant, or returns the 401 or 429 response.
    std::optional<Response> Guard(const Request& request, std::string& tenant);
    boost::asio::awaitable<Response> Submit(Context& context);
    boost::asio::awaitable<Response> GetTask(Context& context);
    boost::asio::awaitable<Response> ListTasks(Context& context);
    boost::asio::awaitable<Response> CancelTask(Context& context);
    boost::asio::awaitable<Response> RetryTask(Context& context);
    // Returns a 429 when the tenant is at its bound of PENDING tasks, or the
    // storage error when counting fails; nullopt admits one more task.
    boost::asio::awaitable<std::optional<Response>> CheckPending(Context& context);
    boost::asio::awaitable<Response> Ready(Context& context);
    boost::asio::awaitable<Response> Metrics(Context& context);

    TaskStore& store_;
    CreateCommit& create_commit_;
    boost::asio::thread_pool& db_pool_;
    TaskWatcher& watcher_;
    std::string cursor_key_;
    SubmissionLimits limits_;
    ApiHooks hooks_;
    ApiGuards guards_;
    TaskStatsCache stats_cache_{std::chrono::seconds(1)};
    bool probes_only_ = false;
};

}  // namespace conveyor::http
