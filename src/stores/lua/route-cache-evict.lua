-- A route cache that did not acknowledge a sync in time loses its lease (it can no longer renew
-- it); the writer then waits until the lease would have ended before answering.
-- KEYS: the members set. ARGV: member id. Returns {now, lease end or -1} (epoch ms, Redis's clock).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return {tostring(now), score or '-1'}
