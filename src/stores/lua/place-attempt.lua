-- Places an attempt on a switch unless it already is, and renews the live call's time to live, in one
-- command (was MULTI, HSETNX, HGET, EXPIRE, EXEC after an HGET: two round trips, six commands).
-- KEYS: the live call (hash). ARGV: the attempt's placement field, the switch, TTL (seconds).
-- Returns the switch that holds the attempt (the first writer's).
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('HGET', KEYS[1], ARGV[1])
