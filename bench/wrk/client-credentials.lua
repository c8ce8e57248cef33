-- Client credentials grant: POST WRK_PATH (/oauth/token)
-- grant_type=client_credentials&scope=WRK_SCOPE with the Authorization
-- header WRK_AUTH (HTTP Basic of a service client). Every request is the
-- same; success is a status below 400.
--
-- Reads: WRK_AUTH, WRK_SCOPE (default bench:read), WRK_PATH.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local req

function setup(thread) common.setup(thread) end

function init(args)
  req = wrk.format("POST", common.env("WRK_PATH", "/oauth/token"),
    {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = common.env("WRK_AUTH")},
    "grant_type=client_credentials&scope=" .. common.env("WRK_SCOPE", "bench:read"))
end

function request() return req end

done = common.done
