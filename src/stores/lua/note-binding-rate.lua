-- A tenant's bindings per minute against its usual rate (hash: minute, count, ewma). The usual rate
-- starts at the count of the tenant's first whole minute and is then an exponentially weighted
-- moving average of its minutes' counts (alpha = 2 / (span + 1)), minutes without a binding counting
-- as 0. Until a first minute is complete there is no usual rate and nothing is flagged. The current
-- minute's count above factor x usual (and at least min) takes the marker (SET NX, a minute long):
-- one flag per tenant per minute.
-- KEYS: state, marker. ARGV: minute (epoch minutes), alpha, factor, min, state ttl (ms), bindings
-- noted (default 1).
-- Returns {count this minute, usual rate as a string ('' when none yet), flagged 0|1}.
local minute = tonumber(ARGV[1])
local alpha = tonumber(ARGV[2])
local added = tonumber(ARGV[6] or '1')
local state = redis.call('HMGET', KEYS[1], 'minute', 'count', 'ewma')
local last = tonumber(state[1])
local count = tonumber(state[2]) or 0
local ewma = tonumber(state[3])
if last == nil or minute <= last then
  count = count + added
  minute = last or minute
else
  if ewma == nil then ewma = count else ewma = ewma * (1 - alpha) + count * alpha end
  local idle = minute - last - 1
  if idle > 0 then ewma = ewma * math.pow(1 - alpha, math.min(idle, 100000)) end
  count = added
end
redis.call('HSET', KEYS[1], 'minute', tostring(minute), 'count', tostring(count))
if ewma ~= nil then redis.call('HSET', KEYS[1], 'ewma', tostring(ewma)) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
if ewma == nil then return {count, '', 0} end
local min = tonumber(ARGV[4])
if min > 0 and count >= min and count > tonumber(ARGV[3]) * ewma
  and redis.call('SET', KEYS[2], tostring(minute), 'NX', 'PX', 60000) then
  return {count, tostring(ewma), 1}
end
return {count, tostring(ewma), 0}
