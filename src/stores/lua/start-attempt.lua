-- Starts one attempt of a click-to-dial call, in one step: claims both legs (SET NX: never ring
-- twice), then writes the attempt's fields into the live call, then reads the cancel flag (a cancel
-- that came before the claims found no leg to kill: nobody may be rung then).
-- KEYS: the live call (hash), A's claim, B's claim (one slot: all tagged by the call id).
-- ARGV: TTL (seconds), then field, value, field, value... for the live call.
-- Returns 0 when a claim was already taken (another delivery has the attempt), 2 when the call
-- was cancelled, 1 when the attempt is this caller's to dial.
local ttl = tonumber(ARGV[1])
if not redis.call('SET', KEYS[2], '1', 'EX', ttl, 'NX') then return 0 end
if not redis.call('SET', KEYS[3], '1', 'EX', ttl, 'NX') then return 0 end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
redis.call('EXPIRE', KEYS[1], ttl)
if redis.call('HGET', KEYS[1], 'cancelRequested') == '1' then return 2 end
return 1
