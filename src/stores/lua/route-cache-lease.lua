-- A controller's route cache holds a lease in the members set (member -> lease end, epoch ms of
-- Redis's clock): while it holds one, every route write waits for its acknowledgement (or for the
-- lease to end) before answering. 'join' takes a lease; 'renew' extends it only if it is still
-- held (a member evicted for not acknowledging must drop its cache and join again).
-- KEYS: the members set. ARGV: member id, lease (ms), 'join' | 'renew'. Returns 1, or 0 when a
-- renewal finds the lease gone.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == 'renew' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
