-- One call of the login throttle (limiter.go), atomic because Redis runs a
-- script without interleaving other commands. It is throttle.Memory's
-- algorithm (internal/throttle/memory.go) step for step; keep them in step.
--
-- KEYS[1]  the key's hash
-- ARGV[1]  "allow" or "failure"
-- ARGV[2]  now, the caller's clock                 (microseconds since 1970)
-- ARGV[3]  Policy.Burst
-- ARGV[4]  Policy.Refill, ARGV[5] Policy.BaseDelay,
-- ARGV[6]  Policy.MaxDelay, ARGV[7] Policy.IdleTTL (microseconds)
--
-- The hash's fields, all numbers:
--   t  failures left before back-off (a fraction while refilling)
--   r  when t was last brought up to date
--   s  failures made with an empty bucket; 0: not backing off
--   u  no attempt before this time
--   l  last failure, or the last attempt while backing off
--
-- "allow" returns {1, 0} for an allowed attempt, {0, wait} for a refused
-- one, wait in microseconds; "failure" returns 1.

local key = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local refill = tonumber(ARGV[4])
local base = tonumber(ARGV[5])
local maxdelay = tonumber(ARGV[6])
local idle = tonumber(ARGV[7])

-- delay is the back-off period after the given number of failures made
-- with an empty bucket (strikes >= 1): base, doubled per strike, capped.
local function delay(strikes)
  local d = base
  local i = 1
  while i < strikes and d < maxdelay do
    d = d * 2
    i = i + 1
  end
  if d > maxdelay then
    d = maxdelay
  end
  return d
end

-- num formats a number so that tonumber gives back the same double
-- (tostring keeps only 14 digits).
local function num(x)
  return string.format('%.17g', x)
end

-- save writes the fields given and sets the key to expire IdleTTL from
-- now by Redis's clock. The idle test below, by the caller's clock,
-- decides when a key is forgotten; the expiry only collects the keys
-- nobody asks about again. A write always sets l to now, and a back-off
-- never outlasts IdleTTL (MaxDelay <= IdleTTL), so nothing live expires.
local function save(...)
  redis.call('HSET', key, ...)
  redis.call('PEXPIRE', key, math.ceil(idle / 1000))
end

local v = redis.call('HMGET', key, 't', 'r', 's', 'u', 'l')
local tokens, refilled, strikes, untl, last
if v[1] then
  tokens, refilled, strikes, untl, last =
    tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4]), tonumber(v[5])
  -- An idle key is forgotten; so is one that does not parse, which this
  -- script never writes.
  if not (tokens and refilled and strikes and untl and last)
      or (now - last >= idle and now >= untl) then
    redis.call('DEL', key)
    tokens = nil
  end
end

if op == 'allow' then
  if tokens == nil or strikes == 0 then
    return {1, 0}
  end
  if now < untl then
    return {0, untl - now}
  end
  -- This attempt is the one the back-off period allows; the next one
  -- waits a period again even if this one's outcome never arrives.
  save('u', num(now + delay(strikes)), 'l', num(now))
  return {1, 0}
end

if op ~= 'failure' then
  return redis.error_reply('keycard throttle: unknown operation')
end

if tokens == nil then
  tokens, refilled, strikes, untl = burst, now, 0, 0
end
if strikes == 0 then
  local d = now - refilled
  if d > 0 then
    tokens = math.min(burst, tokens + d / refill)
  end
  refilled = now
  tokens = tokens - 1
  if tokens < 1 then
    strikes = 1
    untl = now + delay(1)
  end
else
  strikes = strikes + 1
  local u = now + delay(strikes)
  if u > untl then
    untl = u
  end
end
save('t', num(tokens), 'r', num(refilled), 's', num(strikes), 'u', num(untl), 'l', num(now))
return 1
