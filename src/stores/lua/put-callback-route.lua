-- A callback binding's route replaces only an older callback route (B reaches whoever called last),
-- never an AXB or XB route: the rule MySQL applies too.
-- KEYS: the route. ARGV: the route JSON, its expiry (epoch ms). Returns 1 when written, 0 otherwise.
local held = redis.call('GET', KEYS[1])
if held then
  local r = cjson.decode(held)
  if r.kind ~= 'callback' or tonumber(r.expiresAt) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return 1
