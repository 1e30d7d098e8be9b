-- GET /v1/tasks/{id} on ids picked at random from BENCH_IDS_FILE (one id a
-- line). With BENCH_RATE set, requests are paced to that total rate.

local script_dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(script_dir .. "common.lua")

local requests = {}

function init(args)
    local path = os.getenv("BENCH_IDS_FILE")
    if path == nil or path == "" then
        error("BENCH_IDS_FILE must name a file of task ids")
    end
    for line in io.lines(path) do
        if line ~= "" then
            table.insert(requests, wrk.format("GET", "/v1/tasks/" .. line))
        end
    end
    if #requests == 0 then
        error(path .. " contains no task ids")
    end
    math.randomseed(os.time() + 7919 * (bench_thread_index or 0))
end

function request()
    return requests[math.random(#requests)]
end

if bench.rate ~= nil then
    delay = bench.paced_delay
end
