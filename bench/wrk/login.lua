-- Password login: POST WRK_PATH (/v1/login) with a JSON body, the users
-- of WRK_USERS in turn (this thread's share of its lines, each
-- "username<TAB>password"; generated names and passwords, which need no
-- JSON escaping). Success is a status below 400.
--
-- Reads: WRK_USERS, WRK_PATH, WRK_THREADS.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local reqs = {}

function setup(thread) common.setup(thread) end

function init(args)
  local path = common.env("WRK_PATH", "/v1/login")
  for _, line in ipairs(common.share(common.lines(common.env("WRK_USERS")))) do
    local user, pass = line:match("^([^\t]+)\t(.+)$")
    reqs[#reqs + 1] = wrk.format("POST", path, {["Content-Type"] = "application/json"},
      '{"username":"' .. user .. '","password":"' .. pass .. '"}')
  end
  request = common.cycle(reqs)
end

done = common.done
