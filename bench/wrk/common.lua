-- Shared by the wrk scripts in this directory (bench/wrk/README.md): the
-- environment they read, the token files, and a done() that prints the
-- run's figures as one JSON line for bench/cmd/wrkbench.

local common = {}

-- env returns the environment variable name, or default when it is unset
-- or empty; without a default, an unset variable is an error.
function common.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then
      error(name .. " is not set (bench/wrk/README.md lists what each script reads)")
    end
    return default
  end
  return v
end

-- lines returns the non-empty lines of a file.
function common.lines(path)
  local f = assert(io.open(path, "r"))
  local out = {}
  for line in f:lines() do
    if line ~= "" then
      out[#out + 1] = line
    end
  end
  f:close()
  return out
end

-- threads are the wrk threads, kept by setup() for done().
local threads = {}

-- setup hands each thread its number; a script that deals out a pool of
-- tokens calls it with the pool, and each thread gets every n-th line.
function common.setup(thread)
  thread:set("thread_index", #threads)
  threads[#threads + 1] = thread
end

-- share returns this thread's part of items: every n-th from its index,
-- where n is the number of threads (WRK_THREADS, which wrkbench sets from
-- wrk's -t).
function common.share(items)
  local n = tonumber(common.env("WRK_THREADS", "1"))
  local mine = {}
  for i = thread_index + 1, #items, n do
    mine[#mine + 1] = items[i]
  end
  if #mine == 0 then
    error("no items for thread " .. thread_index .. ": give more than " .. #items .. " or fewer threads")
  end
  return mine
end

-- cycle returns a request() that hands out reqs in turn, from the first.
function common.cycle(reqs)
  local i = 0
  return function()
    i = i % #reqs + 1
    return reqs[i]
  end
end

-- bad counts answers with a success status that the script rejected
-- (no refresh token in a refresh answer, an inactive introspection).
bad = 0

-- done prints one line, "wrk-result " and a JSON object, with the
-- summary, the latency percentiles (µs) and the rejected answers.
function common.done(summary, latency, requests)
  local rejected = 0
  for _, t in ipairs(threads) do
    rejected = rejected + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'wrk-result {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"rejected":%d},' ..
    '"latency_us":{"min":%.1f,"mean":%.1f,"p50":%.1f,"p90":%.1f,"p99":%.1f,"p99_9":%.1f,"max":%.1f}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, rejected,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end

return common
