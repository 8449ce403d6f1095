-- A live call's fields and its time to live, what it reports (PUBLISH), and its cancel flag, in one
-- command (was HSET, EXPIRE, one PUBLISH per event and HGET of the flag: a round trip each).
-- KEYS: the live call's hash. ARGV: ttl seconds, n, then n values: field, value, field, value, ...,
-- then channel, message, channel, message, ... to publish.
-- Returns the cancel flag as stored ('1' once a cancel was requested; false when unset).
local n = tonumber(ARGV[2])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + n)) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
for i = 3 + n, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end
return redis.call('HGET', KEYS[1], 'cancelRequested')
