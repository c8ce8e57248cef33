-- Token introspection (RFC 7662): POST WRK_PATH (/oauth/introspect)
-- token=… of live access tokens in turn (this thread's share of the lines
-- of WRK_TOKENS), with the Authorization header WRK_AUTH when set. An
-- answer without "active":true is rejected (counted apart from the
-- status errors).
--
-- Reads: WRK_TOKENS (file, one access token per line), WRK_PATH, WRK_AUTH
-- ("-" or unset for none), WRK_FORM (more form parameters; default
-- "&token_type_hint=access_token"), WRK_THREADS.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local reqs = {}

function setup(thread) common.setup(thread) end

function init(args)
  local path = common.env("WRK_PATH", "/oauth/introspect")
  local form = common.env("WRK_FORM", "&token_type_hint=access_token")
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  local auth = common.env("WRK_AUTH", "-")
  if auth ~= "-" then headers["Authorization"] = auth end
  for _, t in ipairs(common.share(common.lines(common.env("WRK_TOKENS")))) do
    reqs[#reqs + 1] = wrk.format("POST", path, headers, "token=" .. t .. form)
  end
  request = common.cycle(reqs)
end

function response(status, hdrs, body)
  if status == 200 and not body:find('"active"%s*:%s*true') then
    bad = bad + 1
  end
end

done = common.done
