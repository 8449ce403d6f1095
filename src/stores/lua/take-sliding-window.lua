-- Sliding-window limit over several keys at once (one sorted set of admission times per counted
-- number): either every key is under its limit and all are counted, or none is counted and the
-- first key over its limit is named. Atomic, so concurrent requests on several controllers
-- cannot slip past a limit together.
-- KEYS: the counters. ARGV: now (ms), window (ms), a unique member, then one limit per key.
-- Returns {0, 0} when admitted, else {index of the key over its limit (1-based), ms until it frees}.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[3 + i]) then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {i, math.max(1, tonumber(oldest[2]) + window - now)}
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[i], window)
end
return {0, 0}
