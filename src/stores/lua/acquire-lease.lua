-- Leases in a sorted set per tenant (holder -> expiry, by the Redis clock so controllers' clocks
-- need not agree). Expired leases are dropped before counting, so the slots of a controller that
-- died mid-delivery come back after `leaseMs`, and the key itself expires with its last lease.
-- KEYS: the tenant's set. ARGV: lease ms, limit, holder. Returns 1 when taken, 0 when full.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
return 1
