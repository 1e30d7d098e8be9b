-- POST /v1/tasks with {"text": ...}: 1024 bytes of English prose.
-- With BENCH_LIMIT set, the threads together submit that many tasks and then
-- only send a GET /healthz per connection per second (see common.lua).

local script_dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(script_dir .. "common.lua")

local kTextBytes = 1024
local kProse = "A task queue looks simple from the outside. A client hands over a piece " ..
    "of text, receives an identifier at once, and comes back later to read the result. " ..
    "Behind that promise sits a small amount of careful machinery. The service must " ..
    "write the task to durable storage before it answers, because a crash one moment " ..
    "after the reply must not lose work that the client believes was accepted. Workers " ..
    "then claim pending tasks, hold a lease while they run, and record either a result " ..
    "or an error. When a worker disappears in the middle of a job, its lease runs out " ..
    "and another worker takes the task over. Retries wait a little longer each time, so " ..
    "that a struggling database is not flooded by eager clients. Operators watch queue " ..
    "depth, latency and failure counts on a dashboard, and they expect the numbers to " ..
    "stay calm during a busy afternoon. None of this is new, yet every detail matters " ..
    "when thousands of requests arrive each second and the disk must confirm every " ..
    "commit before the next one begins in earnest. Good queues stay boring."
local kText = kProse:sub(1, kTextBytes)
assert(#kText == kTextBytes, "the prose is shorter than " .. kTextBytes .. " bytes")

wrk.method = "POST"
wrk.path = "/v1/tasks"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text":"' .. kText .. '"}'

if bench.limit ~= nil then
    local submit_request = nil
    local health_request = nil
    -- wrk calls request() once on the first thread before the run, only to
    -- check the request it returns, and never sends that one. Every request
    -- that wrk sends follows a delay() call, so only those are counted.
    local delays_pending = 0

    function init(args)
        submit_request = wrk.format("POST", "/v1/tasks")
        health_request = wrk.format("GET", "/healthz", {}, "")
    end

    function delay()
        delays_pending = delays_pending + 1
        if bench.limit_reached() then
            return bench.idle_delay_ms
        end
        return 0
    end

    function request()
        local will_be_sent = delays_pending > 0
        if will_be_sent then
            delays_pending = delays_pending - 1
        end
        if bench.limit_reached() then
            return health_request
        end
        if will_be_sent then
            bench_sent = bench_sent + 1
        end
        return submit_request
    end
end
