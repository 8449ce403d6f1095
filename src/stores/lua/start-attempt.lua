-- Starts an attempt of a click-to-dial call in one command: claims both legs (SET NX: a redelivered
-- job finds them taken and never dials again), then records the attempt's fields.
-- KEYS: A's claim, B's claim, the live call's hash. ARGV: ttl seconds, then field, value, ...
-- Returns 0 when a claim was already taken (nothing recorded), 1 when claimed, 2 when claimed and a
-- cancel had already been requested.
if not redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'NX') then return 0 end
if not redis.call('SET', KEYS[2], '1', 'EX', ARGV[1], 'NX') then return 0 end
redis.call('HSET', KEYS[3], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[3], 'cancelRequested') == '1' then return 2 end
return 1
