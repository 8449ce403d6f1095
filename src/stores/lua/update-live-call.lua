-- A live call's fields, and its time to live, in one command (was MULTI/HSET/EXPIRE/EXEC).
-- KEYS: the live call's hash. ARGV: ttl seconds, then field, value, field, value, ...
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
