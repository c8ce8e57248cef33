-- Through a verifying proxy: GET WRK_PATH with Authorization: Bearer and
-- live access tokens in turn (this thread's share of the lines of
-- WRK_TOKENS). Success is a status below 400.
--
-- Reads: WRK_TOKENS (file, one access token per line), WRK_PATH (default
-- /me/x), WRK_THREADS.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local reqs = {}

function setup(thread) common.setup(thread) end

function init(args)
  local path = common.env("WRK_PATH", "/me/x")
  for _, t in ipairs(common.share(common.lines(common.env("WRK_TOKENS")))) do
    reqs[#reqs + 1] = wrk.format("GET", path, {["Authorization"] = "Bearer " .. t}, nil)
  end
  request = common.cycle(reqs)
end

done = common.done
