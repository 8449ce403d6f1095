-- Distinct parties one number reached within a sliding window (sorted set: party -> last
-- contact), trimmed to threshold + 1 entries so a hot number costs bounded memory. The first
-- time the count exceeds the threshold, the marker (SET NX, one window long) is taken: one flag
-- per number per window, however many controllers see the contacts.
-- KEYS: parties, marker. ARGV: now, window, threshold, party ids...  Returns {count, flagged 0|1}.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
for i = 4, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(threshold + 2))
redis.call('PEXPIRE', KEYS[1], window)
local n = redis.call('ZCARD', KEYS[1])
if n > threshold and redis.call('SET', KEYS[2], '1', 'NX', 'PX', window) then return {n, 1} end
return {n, 0}
