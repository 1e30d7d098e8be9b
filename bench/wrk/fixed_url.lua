-- GET the URL given to wrk, unchanged, and report in the WRKJSON format.
-- With BENCH_RATE set, requests are paced to that total rate.

local script_dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(script_dir .. "common.lua")

if bench.rate ~= nil then
    delay = bench.paced_delay
end
