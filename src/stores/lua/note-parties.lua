-- Distinct parties numbers reached within a sliding window (per number a sorted set: party -> last
-- contact), trimmed to threshold + 1 entries so a hot number costs bounded memory. The first
-- time a count exceeds the threshold, that number's marker (SET NX, one window long) is taken: one
-- flag per number per window, however many controllers see the contacts.
-- KEYS: per number its parties and its marker. ARGV: per number now, window, threshold, how many
--   parties, then the party ids. Returns per number {count, flagged 0|1}, in order.
local out = {}
local a = 1
for k = 1, #KEYS, 2 do
  local now = tonumber(ARGV[a])
  local window = tonumber(ARGV[a + 1])
  local threshold = tonumber(ARGV[a + 2])
  local parties = tonumber(ARGV[a + 3])
  for i = a + 4, a + 3 + parties do redis.call('ZADD', KEYS[k], now, ARGV[i]) end
  a = a + 4 + parties
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now - window)
  redis.call('ZREMRANGEBYRANK', KEYS[k], 0, -(threshold + 2))
  redis.call('PEXPIRE', KEYS[k], window)
  local n = redis.call('ZCARD', KEYS[k])
  if n > threshold and redis.call('SET', KEYS[k + 1], '1', 'NX', 'PX', window) then out[#out + 1] = {n, 1} else out[#out + 1] = {n, 0} end
end
return out
