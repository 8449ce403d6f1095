-- Starts one attempt of a click-to-dial call, in one step (one round trip per dispatched call):
-- reads the live call as it was, returns it unchanged when this attempt was already settled, else
-- claims both legs (SET NX: never ring twice), writes the attempt's fields into the live call and
-- reads the cancel flag (a cancel that came before the claims found no leg to kill: nobody may be rung then).
-- KEYS: the live call (hash), A's claim, B's claim (one slot: all tagged by the call id).
-- ARGV: TTL (seconds), the attempt, n, then n values: field, value, field, value... for the live call,
-- then channel, message, channel, message... to publish once the attempt is this caller's (what its start reports).
-- Returns {code, the live call as it was (HGETALL, flat)}: code 3 when the attempt was settled by an
-- earlier delivery, 0 when a claim was already taken (another delivery has the attempt), 2 when the
-- call was cancelled, 1 when the attempt is this caller's to dial (then only is anything published).
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[3])
local prior = redis.call('HGETALL', KEYS[1])
local finalCdr, attempt = nil, '1'
for i = 1, #prior, 2 do
  if prior[i] == 'finalCdr' then finalCdr = prior[i + 1] elseif prior[i] == 'attempt' and prior[i + 1] ~= '' then attempt = prior[i + 1] end
end
if finalCdr and finalCdr ~= '' and attempt == ARGV[2] then return {3, prior} end
if not redis.call('SET', KEYS[2], '1', 'EX', ttl, 'NX') then return {0, prior} end
if not redis.call('SET', KEYS[3], '1', 'EX', ttl, 'NX') then return {0, prior} end
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + n)) end
redis.call('EXPIRE', KEYS[1], ttl)
if redis.call('HGET', KEYS[1], 'cancelRequested') == '1' then return {2, prior} end
for i = 4 + n, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end
return {1, prior}
