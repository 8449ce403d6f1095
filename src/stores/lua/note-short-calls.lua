-- Robocall pattern: a caller's connected calls within a sliding window, and among them the short
-- ones (sorted sets: call id -> when it was noted). Once at least minCalls are connected and the
-- short ones are sharePercent of them or more, the marker (SET NX, one window long) is taken: one
-- flag per caller per window, however many controllers write CDRs. A call noted twice (a
-- redelivered CDR job) counts once.
-- KEYS: connected, short, marker. ARGV: now, window, call id, short 0|1, minCalls, sharePercent.
-- Returns {connected, short, flagged 0|1}.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'NX', now, ARGV[3])
if ARGV[4] == '1' then redis.call('ZADD', KEYS[2], 'NX', now, ARGV[3]) end
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[i], window)
end
local connected = redis.call('ZCARD', KEYS[1])
local short = redis.call('ZCARD', KEYS[2])
local minCalls = tonumber(ARGV[5])
if minCalls > 0 and connected >= minCalls and short * 100 >= tonumber(ARGV[6]) * connected
  and redis.call('SET', KEYS[3], '1', 'NX', 'PX', window) then
  return {connected, short, 1}
end
return {connected, short, 0}
