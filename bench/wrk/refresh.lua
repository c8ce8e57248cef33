-- Refresh grant: POST WRK_PATH (/oauth/token) grant_type=refresh_token.
-- A refresh token is single use, so each thread keeps a pool of live
-- ones (its share of the lines of WRK_TOKENS): every request takes the
-- oldest, and every answer puts its new refresh_token back. Tokens in the
-- pool plus requests in flight stay equal to the pool's size, so the pool
-- must hold at least the thread's connections (wrkbench prepares two per
-- connection). An answer without a new token loses one; once the pool is
-- empty, requests carry a token the server refuses (counted as status
-- errors), so a broken chain shows in the figures.
--
-- Reads: WRK_TOKENS (file, one refresh token per line), WRK_PATH
-- (default /oauth/token), WRK_FORM (more form parameters, such as
-- "&client_id=…" for a public client), WRK_AUTH (an Authorization header
-- value; none by default), WRK_THREADS.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local path, form, headers
local pool, head, tail = {}, 1, 0

function setup(thread) common.setup(thread) end

function init(args)
  path = common.env("WRK_PATH", "/oauth/token")
  form = common.env("WRK_FORM", "")
  headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  local auth = common.env("WRK_AUTH", "-")
  if auth ~= "-" then headers["Authorization"] = auth end
  for _, t in ipairs(common.share(common.lines(common.env("WRK_TOKENS")))) do
    tail = tail + 1
    pool[tail] = t
  end
end

function request()
  local token = "exhausted"
  if head <= tail then
    token = pool[head]
    pool[head] = nil
    head = head + 1
  end
  return wrk.format("POST", path, headers, "grant_type=refresh_token&refresh_token=" .. token .. form)
end

function response(status, hdrs, body)
  if status ~= 200 then return end
  local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token == nil then
    bad = bad + 1
    return
  end
  tail = tail + 1
  pool[tail] = token
end

done = common.done
