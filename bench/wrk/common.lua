-- Helpers shared by the wrk scripts of bench/run_benchmarks.py. Each script
-- loads this file with dofile() in every Lua state that wrk creates: the main
-- state, which runs setup() and done(), and one state per thread.
--
-- Settings come from environment variables, which every Lua state can read
-- while the script loads. wrk passes its own arguments only to init() in the
-- thread states. The variables are:
--   BENCH_THREADS  the -t value given to wrk (default 1)
--   BENCH_RATE     total target request rate in requests per second; the
--                  scripts that support it pace each thread to an even share
--   BENCH_LIMIT    total number of requests of the script's own kind; after
--                  its share, a thread sends GET /healthz once per second
--                  per connection (used by scripts that support it)

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *spec);
]]

local kClockMonotonic = 1
local kMaxLagMs = 100
local kIdleDelayMs = 1000
local timespec = ffi.new("bench_timespec")

bench = {}

function bench.now_ms()
    ffi.C.clock_gettime(kClockMonotonic, timespec)
    return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

function bench.env_number(name)
    local value = os.getenv(name)
    if value == nil or value == "" then
        return nil
    end
    local number = tonumber(value)
    if number == nil then
        error(name .. " must be a number, not " .. value)
    end
    return number
end

bench.thread_count = bench.env_number("BENCH_THREADS") or 1
bench.rate = bench.env_number("BENCH_RATE")
bench.limit = bench.env_number("BENCH_LIMIT")

-- Main state: number the threads so that each can compute its share of a limit.
local threads = {}

function setup(thread)
    thread:set("bench_thread_index", #threads)
    table.insert(threads, thread)
end

-- The share of total that thread index (0-based) takes.
function bench.share(total, index)
    local base = math.floor(total / bench.thread_count)
    if index < total % bench.thread_count then
        return base + 1
    end
    return base
end

-- Thread state: a schedule of send slots spaced 1000 / rate ms apart. Every
-- connection of the thread takes the next free slot before it sends, so the
-- thread's requests are spread evenly whatever the number of connections.
-- wrk truncates the returned delay to whole milliseconds, but the slots are
-- absolute times, so the rounding does not accumulate. A thread that falls
-- more than kMaxLagMs behind its schedule restarts it instead of bursting.
local next_slot_ms = nil

function bench.paced_delay()
    local now = bench.now_ms()
    local interval = 1000 * bench.thread_count / bench.rate
    if next_slot_ms == nil or next_slot_ms < now - kMaxLagMs then
        next_slot_ms = now
    end
    local slot = next_slot_ms
    next_slot_ms = slot + interval
    if slot <= now then
        return 0
    end
    return slot - now
end

-- Thread state: bench_sent counts the requests of the script's own kind
-- against the thread's share of BENCH_LIMIT. It is a global so that done()
-- can read it with thread:get().
bench_sent = 0

function bench.limit_reached()
    return bench.limit ~= nil and bench_sent >= bench.share(bench.limit, bench_thread_index or 0)
end

bench.idle_delay_ms = kIdleDelayMs

-- Main state: one JSON line with the totals and latency percentiles in
-- microseconds, which the driver finds by its WRKJSON prefix.
function done(summary, latency, requests)
    local sent = 0
    for _, thread in ipairs(threads) do
        sent = sent + (thread:get("bench_sent") or 0)
    end
    local errors = summary.errors
    local seconds = summary.duration / 1e6
    local fields = {
        string.format('"requests":%d', summary.requests),
        string.format('"duration_us":%d', summary.duration),
        string.format('"rate":%.3f', summary.requests / seconds),
        string.format('"bytes":%d', summary.bytes),
        string.format('"limited_requests":%d', sent),
        string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
            errors.connect, errors.read, errors.write, errors.status, errors.timeout),
        string.format('"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,' ..
            '"p50":%d,"p90":%d,"p99":%d,"p999":%d}',
            latency.min, latency.mean, latency.max, latency.stdev,
            latency:percentile(50), latency:percentile(90), latency:percentile(99),
            latency:percentile(99.9)),
    }
    io.write("WRKJSON {" .. table.concat(fields, ",") .. "}\n")
end
