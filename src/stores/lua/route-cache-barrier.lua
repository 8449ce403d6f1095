-- After route writes: the route caches that must hear them before the writer answers. Lapsed
-- leases are dropped (their holders serve nothing any more); if any lease is held, the sync message
-- is published on the route-changes channel, behind the writes' own invalidations.
-- KEYS: the members set. ARGV: the channel, the sync message.
-- Returns {member, lease end, member, lease end, ...} of the leases held.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
if #members > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return members
