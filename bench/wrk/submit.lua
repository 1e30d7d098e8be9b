-- POST /v1/tasks with a fixed body of about 1 KB of English text.
local text = string.rep("The queue hands work to workers, and workers report back. ", 17)
wrk.method = "POST"
wrk.path = "/v1/tasks"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text":"' .. text .. '"}'
