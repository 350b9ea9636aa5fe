-- wrk script for loadtest/bench.sh: POST the ~1 KB OpenAI chat.completions
-- request of the shared peer harness (3 messages, `user` field).
-- env: BENCH_STREAM=1 adds "stream":true; BENCH_KEY=sk-... sends it as
-- "Authorization: Bearer <key>" (default sk-test, which direct/nginx ignore);
-- BENCH_MODEL=name replaces the "model" (default gpt-4o-mini; bench.sh sends
-- its two-arm route "bench"). BENCH_UNIQUE=1 makes every user turn unique.
-- done() prints one machine-readable RESULT line (latencies in microseconds).
local stream = os.getenv("BENCH_STREAM") == "1"
local key = os.getenv("BENCH_KEY")
if not key or #key == 0 then key = "sk-test" end

local body = [[{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a concise financial analyst assistant. Answer in plain English, keep answers under 120 words, cite the section of the report you rely on, and never invent numbers that are not present in the provided text."},{"role":"user","content":"Here is the summary of our Q2 report: revenue was 48.2 million, up 12 percent year over year; subscription revenue grew 19 percent while one-off services declined 4 percent. Operating costs were flat at 31.0 million. We have meaningful EUR exposure since 38 percent of revenue is billed in euros. Please summarise the quarter in two sentences and name the biggest risk."},{"role":"assistant","content":"Understood. Before I summarise: should the risk assessment consider only currency effects, or also customer concentration and churn in the services segment?"}],"temperature":0.2,"max_tokens":256,"top_p":1,"presence_penalty":0,"frequency_penalty":0,"user":"user-7f3c2a9e-bench"]]
local model = os.getenv("BENCH_MODEL")
if model and #model > 0 then
  body = body:gsub('"model":"gpt%-4o%-mini"', '"model":"' .. model .. '"', 1)
end
if stream then
  body = body .. [[,"stream":true}]]
else
  body = body .. [[}]]
end

wrk.method = "POST"
wrk.body = body

-- BENCH_UNIQUE=1: every request's user turn is new (a counter is spliced
-- into it), as in real chats, where only the system prompt and the history
-- repeat; the capture scrubber's clean-string cache then misses on that turn.
if os.getenv("BENCH_UNIQUE") == "1" then
  local n = 0
  local head, tail = body:match('^(.-Here is the summary of our Q2 report)(.*)$')
  request = function()
    n = n + 1
    return wrk.format(nil, nil, nil, head .. " (request " .. n .. ")" .. tail)
  end
end
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT reqs=%d secs=%.3f rps=%.1f p50=%d p90=%d p99=%d max=%d mean=%.1f bytes=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, s, summary.requests / s,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, summary.bytes,
    e.status, e.connect, e.read, e.write, e.timeout))
end
