-- Deletes a route only while it still points at the given binding (a newer binding may have replaced it).
-- KEYS: the route. ARGV: the binding id. Returns 1 when deleted, 0 otherwise.
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).bindingId == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
